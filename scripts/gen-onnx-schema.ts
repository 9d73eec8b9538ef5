/**
 * Generates src/onnx/onnx-schema.ts from ONNX's onnx.proto: the protobufjs JSON descriptor (so the
 * runtime needs only protobufjs's light build: no .proto parser, no file read at startup) and one
 * TypeScript interface per message, describing what protobufjs decodes and accepts for encoding.
 *
 *   npx tsx scripts/gen-onnx-schema.ts [--proto /usr/include/onnx/onnx.proto] [--out src/onnx/onnx-schema.ts]
 *
 * The default proto is ONNX 1.12's, from Debian's libonnx-dev package.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';

const DEFAULT_PROTO = '/usr/include/onnx/onnx.proto';
const DEFAULT_OUT = 'src/onnx/onnx-schema.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** '.onnx.TensorShapeProto.Dimension' → 'ITensorShapeProto_Dimension'. */
function interfaceName(fullName: string): string {
  return 'I' + fullName.replace(/^\.onnx\./, '').replace(/\./g, '_');
}

const SCALAR_TS: Record<string, string> = {
  double: 'number', float: 'number', int32: 'number', uint32: 'number', sint32: 'number',
  fixed32: 'number', sfixed32: 'number', int64: 'Int64', uint64: 'Int64', sint64: 'Int64',
  fixed64: 'Int64', sfixed64: 'Int64', bool: 'boolean', string: 'string', bytes: 'Uint8Array',
};

function fieldType(field: protobuf.Field): string {
  const resolved = field.resolvedType;
  const base = resolved instanceof protobuf.Type ? interfaceName(resolved.fullName)
    : resolved instanceof protobuf.Enum ? 'number'
    : SCALAR_TS[field.type];
  if (!base) throw new Error(`no TypeScript type for field ${field.fullName} of type ${field.type}`);
  return field.repeated ? `${base}[]` : base;
}

function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) out.push(child);
    if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) out.push(...allTypes(child));
  }
  return out;
}

function interfaces(root: protobuf.Root): string {
  return allTypes(root).map((type) => {
    const fields = type.fieldsArray.map((f) => `  ${f.name}?: ${fieldType(f)};`);
    const oneofs = type.oneofsArray.map((o) => `  /** Which member of the oneof is set (protobufjs virtual field). */\n  ${o.name}?: ${o.oneof.map((n) => `'${n}'`).join(' | ')};`);
    return `export interface ${interfaceName(type.fullName)} {\n${[...fields, ...oneofs].join('\n')}\n}\n`;
  }).join('\n');
}

const protoPath = flag('--proto', DEFAULT_PROTO);
const outPath = flag('--out', DEFAULT_OUT);

const source = readFileSync(protoPath, 'utf8');
// keepCase: field names stay as written in onnx.proto (raw_data, dim_value), so code reads like the spec.
const parsed = protobuf.parse(source, { keepCase: true });
parsed.root.resolveAll();
const json = parsed.root.toJSON({ keepComments: false });
const sha = createHash('sha256').update(source).digest('hex').slice(0, 16);

const out = `// GENERATED FILE — do not edit by hand.
// From: ${protoPath} (package ${parsed.package ?? 'onnx'}, sha256 ${sha}…), parsed with protobufjs (keepCase).
// Regenerate: npx tsx scripts/gen-onnx-schema.ts --proto ${protoPath} --out ${outPath}

/** A 64-bit integer as protobufjs hands it over: a Long-like object, or a number when it fits. */
export type Int64 = number | { low: number; high: number; unsigned?: boolean };

/** The protobufjs JSON descriptor of onnx.proto (Root.toJSON()). */
export const ONNX_SCHEMA = ${JSON.stringify(json, null, 2)};

${interfaces(parsed.root)}`;
writeFileSync(outPath, out);
console.log(`wrote ${outPath} from ${protoPath}`);
