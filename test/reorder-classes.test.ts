import { describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { readModel } from '../src/onnx/io.js';
import { float32, int64, toNumbers, type Tensor } from '../src/onnx/tensor.js';
import { studentInClassOrder } from '../src/compress/distill/class-order.js';
import { reorderClassScores } from '../src/passes/index.js';
import { readPreprocessing, withClassNames } from '../src/zoo/metadata.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';
import { fixturePath, randomInput } from './helpers/fixtures.js';

const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node =>
  ({ name, opType, domain: '', inputs, outputs, attributes });

function uniform(dims: number[], seed: number): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)));
}

/** The scores of `graph` on `x`, as rows of numbers. */
async function scores(graph: Graph, x: Tensor): Promise<number[][]> {
  const out = (await runGraph(graph, { [graph.inputs[0]!.name]: x }))[graph.outputs[0]!.name]!;
  const values = toNumbers(out);
  const k = out.dims[1]!;
  return Array.from({ length: out.dims[0]! }, (_, n) => values.slice(n * k, (n + 1) * k));
}

/** Scores after reordering must be the scores before, their columns taken in `order` (to float rounding). */
async function expectReordered(graph: Graph, order: number[], x: Tensor): Promise<Graph> {
  const out = reorderClassScores(graph, order);
  const before = await scores(graph, x);
  const after = await scores(out, x);
  for (let n = 0; n < before.length; n++) {
    for (let i = 0; i < order.length; i++) expect(after[n]![i]).toBeCloseTo(before[n]![order[i]!]!, 5);
  }
  return out;
}

describe('reorderClassScores', () => {
  it('permutes a zoo ResNet\'s Linear (Gemm, transB): the same network, its scores in the new order', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 2, classes: 4 });
    const out = await expectReordered(graph, [2, 0, 3, 1], randomInput([3, 3, 32, 32]));
    // Only the head's tensors change; the input graph is left as it was.
    const changed = [...out.initializers].filter(([name, t]) => graph.initializers.get(name) !== t).map(([name]) => name);
    expect(changed.sort()).toEqual(['fc.bias', 'fc.weight']);
  });

  it('permutes the columns of MatMul + Add behind a Reshape and a Softmax', async () => {
    const g = emptyGraph('matmul-head');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 8] }];
    g.initializers.set('w', uniform([8, 5], 1));
    g.initializers.set('b', uniform([1, 5], 2));
    g.initializers.set('target', int64([2], [-1, 5]));
    g.nodes = [
      node('mm', 'MatMul', ['x', 'w'], ['y']),
      node('bias', 'Add', ['b', 'y'], ['z']),
      node('reshape', 'Reshape', ['z', 'target'], ['r']),
      node('softmax', 'Softmax', ['r'], ['probs'], { axis: { type: 'int', value: 1 } }),
    ];
    g.outputs = [{ name: 'probs', dtype: 'float32', shape: ['batch', 5] }];
    const out = await expectReordered(g, [4, 3, 2, 1, 0], randomInput([2, 8]));
    expect(out.initializers.get('b')!.dims).toEqual([1, 5]);
  });

  it('permutes a 1×1 Conv head\'s output channels (SqueezeNet\'s form), its bias behind an Identity, keeping a weight another node reads', async () => {
    const g = emptyGraph('conv-head');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 6, 4, 4] }];
    g.initializers.set('w', uniform([3, 6, 1, 1], 3));
    g.initializers.set('b0', uniform([3], 4));
    g.nodes = [
      // torch.onnx reads a tensor equal to another through an Identity.
      node('tied', 'Identity', ['b0'], ['b']),
      node('head', 'Conv', ['x', 'w', 'b'], ['c']),
      node('relu', 'Relu', ['c'], ['r']),
      node('pool', 'GlobalAveragePool', ['r'], ['p']),
      node('flat', 'Flatten', ['p'], ['scores']),
      // A second reader of the head's weight: it must keep the original values.
      node('side', 'Conv', ['x', 'w'], ['side']),
    ];
    g.outputs = [{ name: 'scores', dtype: 'float32', shape: ['batch', 3] }, { name: 'side', dtype: 'float32', shape: ['batch', 3, 4, 4] }];
    const x = randomInput([2, 6, 4, 4]);
    const out = await expectReordered(g, [1, 2, 0], x);
    expect(out.initializers.get('w')).toBe(g.initializers.get('w'));
    const side = async (graph: Graph): Promise<number[]> => toNumbers((await runGraph(graph, { x }))['side']!);
    expect(await side(out)).toEqual(await side(g));
  });

  it('permutes the Linear of a torch.onnx export (fresh, with equal tensors stored once)', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet-fresh.onnx'));
    const classes = graph.outputs[0]!.shape![1] as number;
    const order = Array.from({ length: classes }, (_, i) => classes - 1 - i);
    await expectReordered(graph, order, randomInput([2, ...(graph.inputs[0]!.shape!.slice(1) as number[])]));
  });

  it('returns the graph unchanged for the identity order and refuses what is not an order', () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 2, classes: 3 });
    expect(reorderClassScores(graph, [0, 1, 2]).initializers.get('fc.weight')).toBe(graph.initializers.get('fc.weight'));
    for (const bad of [[0, 1], [0, 0, 1], [0, 1, 3]]) expect(() => reorderClassScores(graph, bad)).toThrow(SlimError);
  });
});

describe('studentInClassOrder (slim distill with a student file)', () => {
  const names = ['cat', 'dog', 'ship', 'truck'];
  const teacher = withClassNames(buildZooModel('resnet18-cifar', { width: 0.125, seed: 5, classes: 4 }), names);
  const byTeacher = { student: '/m/student.onnx', owner: { teacher: '/m/teacher.onnx' } };

  it('puts a student recording the teacher\'s classes in another order into the teacher\'s: the same scores per name', async () => {
    // The teacher's very network, listing its classes as ship, cat, truck, dog.
    const shuffled = [2, 0, 3, 1];
    const student = withClassNames(reorderClassScores(teacher, shuffled), shuffled.map((i) => names[i]!));
    const r = studentInClassOrder(student, names, byTeacher);
    expect(r.note).toMatch(/student\.onnx records teacher\.onnx's classes in another order: its classifier's outputs are put in the teacher's order \(cat, dog, ship, truck\)/);
    expect(readPreprocessing(r.graph).classNames).toEqual(names);
    const x = randomInput([2, 3, 32, 32]);
    const [a, b] = [await scores(r.graph, x), await scores(teacher, x)];
    a.forEach((row, n) => row.forEach((v, i) => expect(v).toBeCloseTo(b[n]![i]!, 5)));
    // A teacher recording no names scores the data's classes by position: the student goes into the data's order.
    const byData = studentInClassOrder(student, names, { student: '/m/student.onnx', owner: { data: 'cifar10', teacher: '/m/plain.onnx' } });
    expect(byData.note).toBe("note: student.onnx records the classes of cifar10 in another order: its classifier's outputs are put in the data's order, which plain.onnx, recording no class names, scores by position (cat, dog, ship, truck), keeping what it learned");
  });

  it('takes a student recording no names in the data\'s own order, and puts it in the teacher\'s', async () => {
    // The data's folders sort as ship, cat, truck, dog; the teacher records cat, dog, ship, truck.
    const own = ['ship', 'cat', 'truck', 'dog'];
    const student = buildZooModel('resnet18-cifar', { width: 0.125, seed: 8, classes: 4 });
    const r = studentInClassOrder(student, names, { ...byTeacher, dataOrder: own });
    expect(r.note).toBe("note: student.onnx records no class names, so its outputs are the data's classes in the data's own order; they are put in the order teacher.onnx records (cat, dog, ship, truck)");
    const x = randomInput([2, 3, 32, 32]);
    const [after, before] = [await scores(r.graph, x), await scores(student, x)];
    after.forEach((row, n) => row.forEach((v, i) => expect(v).toBeCloseTo(before[n]![own.indexOf(names[i]!)]!, 5)));
    // In the data's own order already: nothing to do.
    expect(studentInClassOrder(student, names, { ...byTeacher, dataOrder: names })).toEqual({ graph: student });
  });

  it('leaves a student in the same order, or recording no names, as it is; notes other names', () => {
    expect(studentInClassOrder(teacher, names, byTeacher)).toEqual({ graph: teacher });
    const unnamed = buildZooModel('resnet18-cifar', { width: 0.125, seed: 6, classes: 4 });
    expect(studentInClassOrder(unnamed, names, byTeacher)).toEqual({ graph: unnamed });
    const other = withClassNames(unnamed, ['cat', 'dog', 'ship', 'plane']);
    const r = studentInClassOrder(other, names, byTeacher);
    expect(r.graph).toBe(other);
    expect(r.note).toBe("note: student.onnx records other classes than teacher.onnx (only the student has plane; only the teacher has truck): it learns the teacher's, and is written with their names");
  });

  it('says why when the student\'s scores cannot be reordered', () => {
    const g = withClassNames(buildZooModel('resnet18-cifar', { width: 0.125, seed: 6, classes: 4 }), ['dog', 'cat', 'ship', 'truck']);
    // Scores straight from a ReLU of the features: no classifier layer to permute.
    const headless = { ...g, nodes: g.nodes.map((n) => (n.opType === 'Gemm' ? { ...n, opType: 'Relu', inputs: [n.inputs[0]!], attributes: {} } : n)) };
    expect(() => studentInClassOrder(headless, names, byTeacher)).toThrow(/\/m\/student\.onnx: it records teacher\.onnx's classes in another order, and its scores cannot be put in that order \(.*\) — export the student with its classifier as the last layer, or distill into a zoo student/);
  });
});
