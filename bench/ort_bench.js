#!/usr/bin/env node
// ONNX Runtime side of the neutrino benchmark: `node bench/ort_bench.js MODEL_DIR [mlp|cnn]`, where
// MODEL_DIR is what `torch_bench.py export MODEL_DIR` wrote (mlp.onnx, cnn.onnx, infer_*_x.npy,
// infer_*_y.npy). Without a model name it runs both.
// Prints one JSON object per line on stdout and nothing else (logs go to stderr):
// {"system", "workload", "value", "unit", "rss_mb", "loss", "accuracy", "max_abs_diff"}
// Workloads: mlp_infer_b1 (us), mlp_infer_b256 (images/s), cnn_infer_b1, cnn_infer_b256.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const SYSTEM = 'onnxruntime';

function log(...args) {
  process.stderr.write(`ort_bench: ${args.join(' ')}\n`);
}

function num(v) {
  return v === null || v === undefined || !Number.isFinite(v) ? null : v;
}

function emit(workload, value, unit, maxAbsDiff) {
  const rssMb = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
  const record = {
    system: SYSTEM, workload, value: num(value), unit, rss_mb: Math.round(rssMb * 10) / 10,
    loss: null, accuracy: null, max_abs_diff: num(maxAbsDiff),
  };
  process.stdout.write(JSON.stringify(record) + '\n');
}

// Reads a version-1 .npy file of little-endian float32 ('<f4', C order).
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x934e554d || buf[4] !== 0x50 || buf[5] !== 0x59) {
    throw new Error(`${file}: not a .npy file`);
  }
  if (buf[6] !== 1) throw new Error(`${file}: .npy version ${buf[6]} (only 1 is read)`);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || descr[1] !== '<f4') throw new Error(`${file}: dtype ${descr && descr[1]} (want <f4)`);
  if (!order || order[1] !== 'False') throw new Error(`${file}: Fortran order is not read`);
  if (!shape) throw new Error(`${file}: no shape in header`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 10 + headerLen;
  if (buf.length < start + 4 * count) throw new Error(`${file}: truncated`);
  // Copy into a fresh (aligned) ArrayBuffer.
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + start + 4 * count));
  return { data, dims };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Median seconds per call, repeating until both minCalls and minSeconds are reached.
async function timeCall(call, minCalls, minSeconds, warmup) {
  for (let i = 0; i < warmup; ++i) await call();
  const times = [];
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  while (times.length < minCalls || elapsed() < minSeconds) {
    const t0 = process.hrtime.bigint();
    await call();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(times);
}

async function bench(dir, kind) {
  const session = await ort.InferenceSession.create(path.join(dir, `${kind}.onnx`), {
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  });
  const x = readNpy(path.join(dir, `infer_${kind}_x.npy`));
  const expected = readNpy(path.join(dir, `infer_${kind}_y.npy`));
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  const batch = x.dims[0];
  const perImage = x.data.length / batch;
  const all = new ort.Tensor('float32', x.data, x.dims);
  const one = new ort.Tensor('float32', x.data.slice(0, perImage), [1, ...x.dims.slice(1)]);

  const y = (await session.run({ [input]: all }))[output].data;
  if (y.length !== expected.data.length) {
    throw new Error(`${kind}: output has ${y.length} values, reference ${expected.data.length}`);
  }
  let diff = 0;
  for (let i = 0; i < y.length; ++i) diff = Math.max(diff, Math.abs(y[i] - expected.data[i]));

  const b1 = await timeCall(() => session.run({ [input]: one }), kind === 'cnn' ? 500 : 2000, 0.5, 50);
  emit(`${kind}_infer_b1`, b1 * 1e6, 'us', diff);
  const b256 = await timeCall(() => session.run({ [input]: all }), 50, 0.5, 5);
  emit(`${kind}_infer_b256`, batch / b256, 'images/s', diff);
  log(`${kind}: ${session.inputNames} -> ${session.outputNames}, batch ${batch}, max_abs_diff ${diff}`);
  if (typeof session.release === 'function') await session.release();
}

async function main() {
  const [dir, only] = process.argv.slice(2);
  if (!dir || (only !== undefined && only !== 'mlp' && only !== 'cnn')) {
    log('usage: node ort_bench.js MODEL_DIR [mlp|cnn]   (MODEL_DIR from `torch_bench.py export MODEL_DIR`)');
    process.exit(2);
  }
  for (const kind of only ? [only] : ['mlp', 'cnn']) await bench(dir, kind);
}

main().catch((err) => {
  log(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
