"""Runs the conformance checks of one client group on request from the vitest side.

Protocol: one JSON object per line on stdin, {"id": n, "check": name}; one per line on stdout,
{"id": n, "ok": bool, "error": str}. {"id": n, "check": "__list__"} answers the group's check names
(in "names"), so the TypeScript side can insist that every check is run. The server's addresses,
the admin token and the test data come from the environment (see common.py).
"""
import importlib
import json
import sys
import traceback

GROUPS = {
    "tritonclient_http": "checks_http",
    "tritonclient_grpc": "checks_grpc",
    "oip_grpcio": "checks_oip",
}


def main() -> None:
    group = sys.argv[1]
    module = importlib.import_module(GROUPS[group])
    checks = {name[len("check_"):]: fn for name, fn in vars(module).items() if name.startswith("check_")}
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        name = msg["check"]
        reply = {"id": msg["id"], "ok": True, "error": ""}
        if name == "__list__":
            reply["names"] = sorted(checks)
        elif name not in checks:
            reply.update(ok=False, error=f"no check '{name}' in {module.__name__}")
        else:
            try:
                checks[name]()
            except BaseException as err:  # noqa: BLE001 - every failure goes back to the test
                tb = traceback.format_exception(type(err), err, err.__traceback__)
                reply.update(ok=False, error="".join(tb[-6:]))
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
