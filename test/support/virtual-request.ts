// A request for the router's unit tests on virtual time: task "t", one row, due 1 s after now unless
// `over` says otherwise.
import type { Request } from "../../src/router/request.js";
import type { Router } from "../../src/router/router.js";
import type { Clock } from "../../src/cluster/clock.js";

export function request(router: Router, clock: Clock, done: Request["done"], over: Partial<Request> = {}): Request {
  const seq = router.nextSeq();
  return {
    seq,
    id: String(seq),
    task: "t",
    arrival: clock.now(),
    deadline: clock.now() + 1000,
    priority: 1,
    rows: 1,
    minAccuracy: 0,
    lateOk: false,
    input: null,
    done,
    ...over,
  };
}
