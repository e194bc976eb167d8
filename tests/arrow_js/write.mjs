// Writes tables with Arrow JS into the directory argv[2] (a mount's new/):
//   frame.arrow   tableToIPC(t, 'file'): one batch, no nulls, every numeric width,
//                 bool, utf8, timestamp[ms] -> a vineyard::DataFrame
//   frame.arrows  the same table in the stream format
//   nulls.arrows  the stream format, two batches, nulls (a timestamp column too)
//                 -> a vineyard::Table
import { writeFileSync } from 'node:fs';
import {
  tableFromArrays, tableToIPC, vectorFromArray, makeVector, Table, Utf8, Int64, Float64,
  TimestampMillisecond, Bool,
} from 'apache-arrow';

const dir = process.argv[2];
const frame = tableFromArrays({
  i8: Int8Array.from([-128, 0, 127]),
  i16: Int16Array.from([-32768, 1, 32767]),
  i32: Int32Array.from([-2147483648, 2, 2147483647]),
  i64: BigInt64Array.from([-9007199254740993n, 3n, 9223372036854775807n]),
  u8: Uint8Array.from([0, 1, 255]),
  u16: Uint16Array.from([0, 2, 65535]),
  u32: Uint32Array.from([0, 3, 4294967295]),
  u64: BigUint64Array.from([0n, 4n, 18446744073709551615n]),
  f32: Float32Array.from([0.5, -1.25, 3.0e38]),
  f64: Float64Array.from([Math.PI, -0.0, 1e-300]),
  b: vectorFromArray([true, false, true], new Bool()),
  s: vectorFromArray(['', 'héllo', 'x\u{1F600}'], new Utf8()),
  t: vectorFromArray([0, 1700000000123, -1000], new TimestampMillisecond()),
});
writeFileSync(`${dir}/frame.arrow`, tableToIPC(frame, 'file'));
writeFileSync(`${dir}/frame.arrows`, tableToIPC(frame, 'stream'));

const a = tableFromArrays({
  x: vectorFromArray([1.5, null, 3.5], new Float64()),
  n: vectorFromArray([1n, 2n, null], new Int64()),
  s: vectorFromArray(['p', null, 'q'], new Utf8()),
  t: vectorFromArray([1000, 2000, null], new TimestampMillisecond()),
});
const b = tableFromArrays({
  x: vectorFromArray([null, 5.5], new Float64()),
  n: vectorFromArray([7n, 8n], new Int64()),
  s: vectorFromArray(['r', 'ß'], new Utf8()),
  t: vectorFromArray([-1, null], new TimestampMillisecond()),
});
writeFileSync(`${dir}/nulls.arrows`, tableToIPC(new Table([...a.batches, ...b.batches]), 'stream'));
