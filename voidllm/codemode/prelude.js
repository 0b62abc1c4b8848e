// Runs once, as the module given to qjs with -e, when the sandbox takes its snapshot
// (voidllm/codemode/snapshot.py): everything up to the start function below is done then, and every
// execution begins from that memory. Each execution evaluates the module
//   const start = globalThis.__voidllm_start; delete globalThis.__voidllm_start; await start(CODE, SEEDS);
// so the user's code arrives as a string literal, the start function is gone before that code runs, and the
// top-level await of the settled promise keeps qjs running the job loop until the script settles (a promise
// that never settles then spins until the host's deadline stops it).
//
// The script may replace any global, prototype method or accessor before the bridge next runs: JSON,
// Promise, Map, Error, the Array and String methods, Function.prototype.call, getters or setters on
// Object.prototype, iterators. So everything the bridge uses is captured here, before the script runs,
// and from then on the bridge calls no method through a prototype, uses no iterator, spread or
// destructuring, keeps its state in null-prototype objects, and builds every frame by concatenating
// primitive strings. The script's own values reach the bridge only through `stringify` and `String` inside
// try/catch. What the script can still do is break its own values (its toJSON decides how its result
// encodes) or its own promises: then the execution ends with the script's error or at the deadline, and
// the host validates every frame anyway.
const apply = Reflect.apply, create = Object.create, freeze = Object.freeze;
const defineProperty = Object.defineProperty, getPrototypeOf = Object.getPrototypeOf;
const isPrototypeOf = Object.prototype.isPrototypeOf;
const stringify = JSON.stringify, parse = JSON.parse;
const P = Promise, then = Promise.prototype.then;
const E = Error, errorPrototype = Error.prototype, TE = TypeError, EE = EvalError;
const Str = String, slice = String.prototype.slice;
const ProxyC = Proxy;
const out = std.out, input = std.in, setReadHandler = os.setReadHandler;
const puts = out.puts, flush = out.flush, getline = input.getline;
const AsyncFunction = getPrototypeOf(async function () {}).constructor;
const imul = Math.imul;
const LIMIT = 4096;

let done;
const settled = new P((resolve) => { done = resolve; });
// awaiting reads `constructor`: an own property keeps the top-level await off Promise.prototype
defineProperty(settled, "constructor", { value: P });

const blocked = function () { throw new EE("code generation is disabled"); };
blocked.prototype = Function.prototype;
for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
  defineProperty(getPrototypeOf(f), "constructor", { value: blocked, writable: false, configurable: false });
}
for (const name of ["std", "os", "bjson", "eval", "print", "setTimeout", "setInterval", "clearTimeout",
                    "clearInterval", "scriptArgs", "queueMicrotask"]) {
  delete globalThis[name];
}
defineProperty(globalThis, "Function", { value: blocked, writable: false, configurable: false });

const send = (line) => { apply(puts, out, [line + "\n"]); apply(flush, out, []); };
const cut = (text) => text.length > LIMIT ? apply(slice, text, [0, LIMIT]) : text;
const quote = (text) => stringify(text); // text is always a primitive string: no toJSON, no getters
const broken = () => send('{"t":"bridge"}');
const show = (v) => {
  if (typeof v === "string") return v;
  try { const text = stringify(v); if (typeof text === "string") return text; } catch { /* below */ }
  try { return Str(v); } catch { return "[a value that cannot be shown]"; }
};

const pending = create(null);
let count = 0, nextId = 0;
const settle = (entry, frame) => {
  if (frame.ok === true) {
    let value;
    try { value = parse(frame.r); } catch (e) { entry.reject(e); return; }
    entry.resolve(value);
    return;
  }
  let error;
  try { error = new E(frame.m); } catch (e) { error = e; }
  entry.reject(error);
};
const onReadable = () => {
  try {
    const frame = parse(apply(getline, input, []));
    const entry = pending[frame.id];
    if (entry === undefined) { broken(); return; }
    delete pending[frame.id];
    count -= 1;
    if (count === 0) setReadHandler(0, null);
    settle(entry, frame);
  } catch { broken(); }
};
const call = (server, tool, args) => new P((resolve, reject) => {
  const text = stringify(args === undefined ? {} : args);
  if (typeof text !== "string") throw new TE("tool arguments must be a JSON value");
  const id = ++nextId;
  if (count === 0) setReadHandler(0, onReadable);
  const entry = create(null);
  entry.resolve = resolve;
  entry.reject = reject;
  pending[id] = entry;
  count += 1;
  send('{"t":"call","id":' + id + ',"s":' + quote(server) + ',"n":' + quote(tool) + ',"a":' + quote(text) + "}");
});
// `then` and `toJSON` are what `await` and JSON.stringify look up: they are never tools or servers, so that
// `await tools.github` or returning `tools.github` calls nothing.
const named = (key) => typeof key === "string" && key !== "then" && key !== "toJSON";
const server = (alias) => freeze(new ProxyC(create(null), {
  __proto__: null,
  get: (_, tool) => named(tool) ? (args) => call(alias, tool, args) : undefined,
}));
const tools = freeze(new ProxyC(create(null), {
  __proto__: null,
  get: (_, alias) => named(alias) ? server(alias) : undefined,
}));
const log = (level) => (...args) => {
  let text = "";
  for (let i = 0; i < args.length && text.length < LIMIT; i++) text += (i === 0 ? "" : " ") + show(args[i]);
  send('{"t":"log","l":"' + level + '","m":' + quote(cut(text)) + "}");
};
const con = freeze({ log: log("info"), info: log("info"), debug: log("debug"),
                     warn: log("warn"), error: log("error") });
defineProperty(globalThis, "console", { value: con, writable: false, configurable: false });
defineProperty(globalThis, "tools", { value: tools, writable: false, configurable: false });

const text = (v) => typeof v === "string" ? v : Str(v);
const failure = (phase, e) => {
  let name = "", message;
  try {
    const isError = e !== null && (typeof e === "object" || typeof e === "function") &&
      apply(isPrototypeOf, errorPrototype, [e]);
    if (isError) { name = text(e.name); message = text(e.message); } else message = show(e);
  } catch {
    name = "";
    message = "the script threw a value that cannot be shown";
  }
  const kind = name === "InternalError" && message === "out of memory" ? "memory" : phase;
  send('{"t":"err","k":"' + kind + '","n":' + quote(cut(name)) + ',"m":' + quote(cut(message)) + "}");
};
const encode = (v) => {
  if (typeof v === "string") { try { parse(v); return v; } catch { return stringify(v); } }
  const text = stringify(v);
  return typeof text === "string" ? text : "null";
};
const finish = (value) => {
  let result;
  try { result = encode(value); } catch (e) { failure("runtime", e); done(); return; }
  send('{"t":"ok","r":' + quote(result) + "}");
  done();
};
const fail = (e) => { failure("runtime", e); done(); };

// Math.random: QuickJS seeds its generator when the context is made, which is once, in the snapshot; so it is
// replaced by xoshiro128** seeded by the host for each execution (never shared between two of them).
let r0 = 1, r1 = 0, r2 = 0, r3 = 0;
const next = () => {
  const m = imul(r1, 5);
  const result = imul((m << 7) | (m >>> 25), 9) >>> 0;
  const t = r1 << 9;
  r2 ^= r0; r3 ^= r1; r1 ^= r2; r0 ^= r3; r2 ^= t; r3 = (r3 << 11) | (r3 >>> 21);
  return result;
};
const random = () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
defineProperty(Math, "random", { value: random, writable: true, configurable: true });

const start = (source, s0, s1, s2, s3) => {
  r0 = s0 | 0; r1 = s1 | 0; r2 = s2 | 0; r3 = s3 | 0;
  if ((r0 | r1 | r2 | r3) === 0) r0 = 1;
  let fn;
  try { fn = new AsyncFunction(source); } catch (e) { failure("syntax", e); done(); }
  if (fn !== undefined) {
    // `then` looks up the promise's constructor (species), which the script may have replaced: when that
    // throws, the script broke its own promise and fails with its own error
    try { apply(then, fn(), [finish, fail]); } catch (e) { fail(e); }
  }
  return settled;
};
defineProperty(globalThis, "__voidllm_start", { value: start, configurable: true });
