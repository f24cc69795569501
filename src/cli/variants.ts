// `sloserve variants`: generate a task's variants from its ONNX model (int8, graph-optimised, other
// input resolutions), profile and measure them, and keep the Pareto front.
import { Command, InvalidArgumentError } from "commander";
import { fmt, printTable } from "../terminal/table.js";
import { DEFAULT_MODELS_DIR, prepareZoo } from "../bundled-zoo/prepare.js";

const log = (msg: string) => process.stderr.write(`${msg}\n`);

export function registerVariantsCommand(program: Command): void {
  const variants = program.command("variants").description("derive variants of a task's model (INFaaS' generator)");
  variants
    .command("generate")
    .description(
      "derive int8, graph-optimised and (detector) input-resolution variants, profile them, measure their accuracy, and write those on the accuracy/latency Pareto front",
    )
    .requiredOption("-t, --task <name>", "task whose variants to generate (ocr-det, ocr-rec, digits)")
    .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS_DIR)
    .option("--from <variants>", "source variant(s), comma-separated (default: every variant not itself generated)")
    .option("--recipes <names>", "only these recipes, comma-separated (e.g. int8,opt,r320)")
    .option("--images <n>", "measure accuracy on the first n images of the labelled set (default: all)", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1)
        throw new InvalidArgumentError(`--images needs a positive integer, got '${v}'`);
      return n;
    })
    .option("--dry-run", "measure and print, write nothing")
    .action(
      async (opts: {
        task: string;
        models: string;
        from?: string;
        recipes?: string;
        images?: number;
        dryRun?: boolean;
      }) => {
        await prepareZoo(opts.models, log);
        const { generateVariants } = await import("../variants/generate.js");
        const result = await generateVariants({
          modelsDir: opts.models,
          task: opts.task,
          from: opts.from?.split(",").map((s) => s.trim()),
          recipes: opts.recipes?.split(",").map((s) => s.trim()),
          evalImages: opts.images,
          dryRun: opts.dryRun,
          log,
        });
        const rows = result.sources.map((s) => [
          s.name,
          "(source)",
          fmt(s.accuracy * 100),
          fmt(s.cpuMs),
          "1.00",
          fmt(s.latencyMs),
          "kept",
        ]);
        for (const c of result.candidates) {
          const src = result.sources.find((s) => c.name.startsWith(`${s.name}-`));
          rows.push([
            c.name,
            src?.name ?? "",
            fmt(c.accuracy.value * 100),
            fmt(c.cpuMs),
            src ? fmt(src.cpuMs / c.cpuMs) : "",
            c.latencyMs === undefined ? "-" : fmt(c.latencyMs),
            c.reason,
          ]);
        }
        printTable(["variant", "from", "accuracy %", "CPU ms / run", "speed-up", "wall p50 b=1 c=1 ms", "kept"], rows);
        if (opts.dryRun) log("(dry run: nothing written)");
        else if (opts.task === "ocr-det" || opts.task === "ocr-rec") await printE2e(opts.models);
      },
    );
  variants
    .command("ocr-e2e")
    .description(
      "re-measure the ocr pipeline's end-to-end accuracy for every combination of stage variants, skipping the classifier too, and its boxes per image (models/ocr/accuracy.yaml)",
    )
    .option("-m, --models <dir>", "model repository folder", DEFAULT_MODELS_DIR)
    .action(async (opts: { models: string }) => {
      await prepareZoo(opts.models, log);
      await printE2e(opts.models);
    });
}

async function printE2e(models: string): Promise<void> {
  const { refreshE2eRecord } = await import("../ocr/e2e-record.js");
  const record = await refreshE2eRecord(models, log);
  printTable(
    ["det", "cls", "rec", "1-CER end to end %"],
    record.combinations.map((c) => [
      c.stages["ocr-det"]!,
      c.stages["ocr-cls"]!,
      c.stages["ocr-rec"]!,
      fmt(c.value * 100),
    ]),
  );
}
