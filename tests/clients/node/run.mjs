// Shared by the client scripts: the gateway's address and key from the environment, and a runner that
// calls the cases named on the command line in order and prints one JSON object, case name -> result.
// A case that throws records {"thrown": {name, status, ...}} instead of a result, so the test reads the
// SDK's typed error (its class name and HTTP status) and the other cases still run.

export const url = process.env.GATEWAY_URL;
export const key = process.env.GATEWAY_KEY;

if (!url || !key) {
  console.error("GATEWAY_URL and GATEWAY_KEY must be set");
  process.exit(2);
}

export function thrown(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    status: error?.status ?? error?.code ?? null,
    // the error's type: Anthropic's envelope nests it ({type: "error", error: {type}}), OpenAI's does not
    type: error?.error?.error?.type ?? error?.error?.type ?? null,
    // the request field a 400 is about (OpenAI's param), when the envelope names one
    param: error?.error?.param ?? null,
    message: String(error?.message ?? error),
  };
}

// The typed error a call raises: its class, whether it is the SDK's exported class `expected`, its status.
export async function refusal(call, expected) {
  try {
    await call();
  } catch (error) {
    return { ...thrown(error), typed: error instanceof expected };
  }
  return { name: null };
}

export async function run(cases) {
  const names = process.argv.slice(2);
  const unknown = names.filter((name) => !(name in cases));
  if (names.length === 0 || unknown.length > 0) {
    console.error(`usage: node <script> CASE... (cases: ${Object.keys(cases).join(", ")})`);
    process.exit(2);
  }
  const results = {};
  for (const name of names) {
    try {
      results[name] = await cases[name]();
    } catch (error) {
      results[name] = { thrown: thrown(error) };
    }
  }
  process.stdout.write(JSON.stringify(results) + "\n");
}
