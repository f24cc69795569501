// Writes each stage of a plan as an ONNX model of its own: its nodes, the constants and initializers
// they read (copied, so a weight two stages share is in both), the tensors crossing the cut before it as
// inputs and the tensors crossing the cut after it as outputs, under their names in the source graph, so
// the chain pipeline walk hands one stage's outputs to the next stage's inputs by name. A tensor that only
// passes through a stage is both its input and its output. The batch dimension stays dynamic.
import onnxPkg from "onnx-proto";
import { DATATYPES } from "../repository/datatypes.js";
import type { TensorDecl } from "../repository/schema.js";
import type { Analysis, StageCost } from "./analysis.js";
import type { GraphNode, TensorProto, ValueInfoProto } from "./graph.js";
import type { PartitionPlan } from "./plan.js";

const { onnx } = onnxPkg;

export interface StageModel {
  /** 1-based. */
  index: number;
  bytes: Uint8Array;
  inputs: TensorDecl[];
  outputs: TensorDecl[];
  cost: StageCost;
  nodes: number;
  /** Elements of its initializers of rank ≥ 1 (the learned parameters it holds). */
  parameters: number;
}

export function buildStages(a: Analysis, plan: PartitionPlan, meta: Record<string, string> = {}): StageModel[] {
  const g = a.graph;
  const k = plan.stages.length;
  return plan.stages.map((cost, i) => {
    const first = i === 0;
    const last = i === k - 1;
    const own = g.order.slice(cost.from, cost.to);
    const inputs = first ? g.inputs : a.crossing[cost.from]!.map((t) => valueInfo(a, t));
    const outputs = last ? g.outputs : a.crossing[cost.to]!.map((t) => valueInfo(a, t));
    const reads = own.flatMap((n) => n.reads);
    if (last) reads.push(...g.outputs.map((o) => o.name ?? ""));
    const { constants, initializers } = constantsFor(a, reads);
    const touched = new Set([...reads, ...own.flatMap((n) => n.outputs)]);
    const graph = onnx.GraphProto.create({
      name: `${g.model.graph?.name || "model"}_stage${i + 1}`,
      node: [...constants, ...own].map((n) => n.proto),
      initializer: initializers,
      input: inputs,
      output: outputs,
      valueInfo: (g.model.graph?.valueInfo ?? []).filter((v) => touched.has(v.name ?? "")),
    });
    const model = onnx.ModelProto.create({
      irVersion: g.model.irVersion,
      opsetImport: g.model.opsetImport,
      producerName: "sloserve partition",
      producerVersion: "0.1.0",
      domain: g.model.domain,
      modelVersion: g.model.modelVersion,
      docString: `Stage ${i + 1} of ${k} of a model cut by sloserve partition. ${g.model.docString ?? ""}`.trim(),
      metadataProps: [
        ...(g.model.metadataProps ?? []),
        ...Object.entries({ ...meta, partition_stage: `${i + 1}/${k}` }).map(([key, value]) => ({ key, value })),
      ],
      functions: g.model.functions,
      graph,
    });
    return {
      index: i + 1,
      bytes: onnx.ModelProto.encode(model).finish(),
      inputs: inputs.map((v) => declOf(a, v.name ?? "")),
      outputs: outputs.map((v) => declOf(a, v.name ?? "")),
      cost,
      nodes: own.length,
      parameters: initializers.reduce(
        (s, t) => s + ((t.dims ?? []).length >= 1 ? (t.dims ?? []).reduce<number>((x, d) => x * Number(d), 1) : 0),
        0,
      ),
    };
  });
}

/** The constant nodes (in topological order) and initializers that `reads` need, transitively. */
function constantsFor(a: Analysis, reads: string[]): { constants: GraphNode[]; initializers: TensorProto[] } {
  const g = a.graph;
  const nodes = new Set<GraphNode>();
  const inits = new Map<string, TensorProto>();
  const visit = (r: string) => {
    const init = g.initializers.get(r);
    if (init) {
      inits.set(r, init);
      return;
    }
    const c = g.constantOf.get(r);
    if (!c || nodes.has(c)) return;
    nodes.add(c);
    c.reads.forEach(visit);
  };
  reads.forEach(visit);
  return { constants: g.constants.filter((c) => nodes.has(c)), initializers: [...inits.values()] };
}

function valueInfo(a: Analysis, name: string): ValueInfoProto {
  const f = a.facts.get(name)!;
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DATATYPES[f.datatype!].onnx,
        shape: { dim: [{ dimParam: "batch" }, ...f.rowShape!.map((d) => ({ dimValue: d }))] },
      },
    },
  });
}

function declOf(a: Analysis, name: string): TensorDecl {
  const f = a.facts.get(name);
  if (!f || !f.rowShape || !f.datatype || f.datatype === "BYTES")
    throw new Error(`tensor '${name}' cannot be declared in a task.yaml (no batch-leading numeric shape)`);
  return { name, datatype: f.datatype, shape: f.rowShape };
}
