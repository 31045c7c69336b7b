// The original runtime for benchmarks/real.py: a TF.js graph model run by @tensorflow/tfjs in node.
//
//     node benchmarks/tfjs_peer.mjs --peer benchmarks/.peer --model M.json --input IN.json
//                                   [--backend wasm|cpu] [--warmup 1] [--repeats 5] [--out RESULT.json]
//
// --peer: the folder `npm install --prefix` filled (benchmarks/real.py installs @tensorflow/tfjs and
// @tensorflow/tfjs-backend-wasm there); the packages are loaded from it, not from the script's own folder.
// --model: model.json of a TF.js graph model; it is read from local files with a custom IOHandler (weightSpecs:
// all weightsManifest[].weights in order; weightData: the .bin shards concatenated), nothing is fetched.
// --input: a small JSON {"name", "dtype": "int32"|"float32", "shape": [...], "data": "raw.bin"} next to the raw
// little-endian bytes (C order), as benchmarks/real.py writes it.
// Runs --warmup + --repeats forwards (execute + reading every output back) and writes one JSON object (to --out,
// else as the last line of stdout): per-forward wall ms (performance.now) and process CPU ms
// (process.cpuUsage, user + system, all threads), peak RSS (process.resourceUsage().maxRSS, KiB), backend, tfjs
// version, wasm variant and threads, and each output's shape, sum, first values and raw float32 file
// (<out>.<i>.bin) so the caller can compare them with its own outputs.
//
// The wasm backend runs single-threaded in node whatever is asked: tfjs-backend-wasm 4.x reports no multithread
// support under node (WASM_HAS_MULTITHREAD_SUPPORT is false there), so it loads tfjs-backend-wasm-simd.wasm when
// WebAssembly SIMD validates (node >= 16), else tfjs-backend-wasm.wasm. setThreadsCount(1) is set as well.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

function parseArgs(argv) {
  const args = { backend: 'wasm', warmup: 1, repeats: 5, out: null, peer: null, model: null, input: null };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`);
    args[key] = ['warmup', 'repeats'].includes(key) ? Number(argv[i + 1]) : argv[i + 1];
  }
  for (const key of ['peer', 'model', 'input']) if (!args[key]) throw new Error(`--${key} is required`);
  return args;
}

function localHandler(modelJson) {
  const dir = path.dirname(modelJson);
  return {
    async load() {
      const model = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
      const weightSpecs = [];
      const shards = [];
      for (const group of model.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
      }
      const joined = Buffer.concat(shards);
      const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
      return {
        modelTopology: model.modelTopology, weightSpecs, weightData, format: model.format,
        generatedBy: model.generatedBy, convertedBy: model.convertedBy, signature: model.signature,
        userDefinedMetadata: model.userDefinedMetadata, modelInitializer: model.modelInitializer,
      };
    },
  };
}

function readInput(tf, spec) {
  const meta = JSON.parse(fs.readFileSync(spec, 'utf8'));
  const raw = fs.readFileSync(path.resolve(path.dirname(spec), meta.data));
  const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
  const Typed = { int32: Int32Array, float32: Float32Array }[meta.dtype];
  if (!Typed) throw new Error(`input dtype ${meta.dtype}: int32 or float32 only`);
  return { name: meta.name, tensor: tf.tensor(new Typed(buf), meta.shape, meta.dtype) };
}

function vmHwmKib() {  // peak RSS of this process's own address space (Linux), unaffected by the parent's
  try {
    const m = /^VmHWM:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch (e) { return null; }
}

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const peer = path.resolve(args.peer);
  const require = createRequire(path.join(peer, 'package.json'));
  const start = performance.now();
  const tf = require('@tensorflow/tfjs');
  let wasm = null;
  let variant = null;
  if (args.backend === 'wasm') {
    wasm = require('@tensorflow/tfjs-backend-wasm');
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));  // .../dist
    wasm.setWasmPaths(dist + '/');  // a filesystem prefix: emscripten reads it with fs in node, no fetch
    if (wasm.setThreadsCount) wasm.setThreadsCount(1);
  }
  if (!(await tf.setBackend(args.backend))) throw new Error(`backend ${args.backend} did not initialise`);
  await tf.ready();
  const env = tf.env();
  let threads = 1;
  if (args.backend === 'wasm') {
    const simd = await env.getAsync('WASM_HAS_SIMD_SUPPORT');
    const mt = await env.getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    variant = simd && mt ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm'
      : 'tfjs-backend-wasm.wasm';
    threads = wasm.getThreadsCount ? wasm.getThreadsCount() : null;
  }
  const model = await tf.loadGraphModel(localHandler(path.resolve(args.model)));
  const input = readInput(tf, args.input);
  const outputs = model.outputNodes;
  const feed = { [model.inputNodes[0]]: input.tensor };
  const loadMs = performance.now() - start;

  let async = false;
  const forward = async () => {
    let result;
    if (!async) {
      try { result = model.execute(feed, outputs); } catch (e) {
        if (!/executeAsync/.test(String(e.message))) throw e;
        async = true;
      }
    }
    if (async) result = await model.executeAsync(feed, outputs);
    result = Array.isArray(result) ? result : [result];
    const data = result.map((t) => t.dataSync());
    const shapes = result.map((t) => t.shape);
    tf.dispose(result);
    return { data, shapes };
  };

  const wall = [];
  const cpu = [];
  let last = null;
  for (let i = 0; i < args.warmup + args.repeats; i++) {
    const w0 = performance.now();
    const c0 = cpuMs();
    last = await forward();
    const c1 = cpuMs();
    const w1 = performance.now();
    if (i >= args.warmup) { wall.push(w1 - w0); cpu.push(c1 - c0); }
  }

  const result = {
    runtime: 'tfjs', tfjs_version: tf.version.tfjs, backend: tf.getBackend(), wasm_variant: variant,
    threads, node: process.version, execute: async ? 'executeAsync' : 'execute', load_ms: loadMs,
    wall_ms: wall, cpu_ms: cpu, max_rss_kib: process.resourceUsage().maxRSS, vm_hwm_kib: vmHwmKib(),
    input: input.name, outputs: [],
  };
  outputs.forEach((name, i) => {
    const values = Float32Array.from(last.data[i]);
    let sum = 0;
    for (const v of values) sum += v;
    const entry = { name, shape: last.shapes[i], sum, first: Array.from(values.slice(0, 8)) };
    if (args.out) {
      entry.file = `${path.basename(args.out)}.${i}.bin`;
      fs.writeFileSync(path.join(path.dirname(args.out), entry.file), Buffer.from(values.buffer));
    }
    result.outputs.push(entry);
  });
  const text = JSON.stringify(result);
  if (args.out) fs.writeFileSync(args.out, text); else process.stdout.write(text + '\n');
}

main().catch((e) => { process.stderr.write(`tfjs_peer: ${e && e.stack || e}\n`); process.exit(1); });
