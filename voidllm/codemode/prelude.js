// Runs as the module given to qjs with -e; the user's code arrives as scriptArgs[0]. The top-level
// await keeps qjs running the job loop until the script settles.
await (async () => {
  const out = std.out, input = std.in, setReadHandler = os.setReadHandler;
  const AsyncFunction = (async function () {}).constructor;
  const stringify = JSON.stringify, parse = JSON.parse;
  const send = (frame) => { out.puts(stringify(frame) + "\n"); out.flush(); };
  const source = scriptArgs[0];
  const blocked = function () { throw new EvalError("code generation is disabled"); };
  for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    const proto = Object.getPrototypeOf(f);
    blocked.prototype = Function.prototype;
    Object.defineProperty(proto, "constructor", { value: blocked, writable: false, configurable: false });
  }
  for (const name of ["std", "os", "bjson", "eval", "print", "setTimeout", "setInterval", "clearTimeout",
                      "clearInterval", "scriptArgs", "queueMicrotask"]) {
    delete globalThis[name];
  }
  Object.defineProperty(globalThis, "Function", { value: blocked, writable: false, configurable: false });
  const pending = new Map();
  let nextId = 0;
  const onReadable = () => {
    const frame = parse(input.getline());
    const entry = pending.get(frame.id);
    pending.delete(frame.id);
    if (pending.size === 0) setReadHandler(0, null);
    if (frame.ok) entry.resolve(frame.r === undefined ? undefined : parse(frame.r));
    else entry.reject(new Error(frame.m));
  };
  const call = (server, tool, args) => new Promise((resolve, reject) => {
    const id = ++nextId;
    const text = stringify(args === undefined ? {} : args);
    if (pending.size === 0) setReadHandler(0, onReadable);
    pending.set(id, { resolve, reject });
    send({ t: "call", id, s: server, n: tool, a: text });
  });
  const server = (alias) => Object.freeze(new Proxy(Object.create(null), {
    get: (_, tool) => typeof tool === "string" ? (args) => call(alias, tool, args) : undefined,
  }));
  const tools = Object.freeze(new Proxy(Object.create(null), {
    get: (_, alias) => typeof alias === "string" ? server(alias) : undefined,
  }));
  const show = (v) => { if (typeof v === "string") return v; try { return String(stringify(v)); } catch { return String(v); } };
  const log = (level) => (...args) => send({ t: "log", l: level, m: args.map(show).join(" ").slice(0, 4096) });
  const con = Object.freeze({ log: log("info"), info: log("info"), debug: log("debug"), warn: log("warn"), error: log("error") });
  Object.defineProperty(globalThis, "console", { value: con, writable: false, configurable: false });
  Object.defineProperty(globalThis, "tools", { value: tools, writable: false, configurable: false });
  const encode = (v) => {
    if (typeof v === "string") { try { parse(v); return v; } catch { return stringify(v); } }
    const text = stringify(v);
    return text === undefined ? "null" : text;
  };
  const failure = (phase, e) => {
    const name = e instanceof Error ? String(e.name) : "";
    const message = e instanceof Error ? String(e.message) : show(e);
    const oom = name === "InternalError" && message === "out of memory";
    send({ t: "err", k: oom ? "memory" : phase, n: name, m: message });
  };
  let fn;
  try { fn = new AsyncFunction(source); } catch (e) { failure("syntax", e); return; }
  let value;
  try { value = await fn(); } catch (e) { failure("runtime", e); return; }
  try { send({ t: "ok", r: encode(value) }); } catch (e) { failure("runtime", e); }
})();
