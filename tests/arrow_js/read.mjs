// Reads an Arrow IPC file (or stream) with Arrow JS and prints it as JSON:
// {"fields": [{"name", "type", "nullable"}], "columns": {name: [values]}}.
// Values: numbers as JSON numbers (NaN and infinities as strings), 64-bit integers
// as decimal strings, timestamps and durations as their raw integer (string),
// binary as lowercase hex, null as null.
import { readFileSync } from 'node:fs';
import { makeVector, tableFromIPC, Type } from 'apache-arrow';

const table = tableFromIPC(readFileSync(process.argv[2]));
const out = { fields: [], columns: {}, rows: table.numRows };
for (const field of table.schema.fields) {
  out.fields.push({ name: field.name, type: String(field.type), nullable: field.nullable });
  const column = table.getChild(field.name);
  const values = [];
  const id = field.type.typeId;
  const raw = id === Type.Timestamp || id === Type.Duration;
  for (const data of column.data) {
    const chunk = makeVector(data);
    // Timestamps and durations: the stored 64-bit integer, whatever the unit.
    const ints = raw ? (data.values instanceof BigInt64Array
      ? data.values : new BigInt64Array(data.values.buffer, data.values.byteOffset, data.length))
      : null;
    for (let i = 0; i < data.length; ++i) {
      if (!chunk.isValid(i)) {
        values.push(null);
        continue;
      }
      let v = raw ? ints[i] : chunk.get(i);
      if (typeof v === 'bigint') v = v.toString();
      else if (typeof v === 'number' && !Number.isFinite(v)) v = String(v);
      else if (typeof v === 'number' && Object.is(v, -0)) v = '-0';
      else if (v instanceof Uint8Array) v = Buffer.from(v).toString('hex');
      values.push(v);
    }
  }
  out.columns[field.name] = values;
}
console.log(JSON.stringify(out));
