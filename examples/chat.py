"""Chat through VoidLLM with the official openai SDK: one answer, then one streamed answer.

Usage: python examples/chat.py <vl_ key> [base url, default http://127.0.0.1:8080/v1]
                               [model, default "default"]
"""

from __future__ import annotations

import sys

import openai


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    key = argv[1]
    base_url = argv[2] if len(argv) > 2 else "http://127.0.0.1:8080/v1"
    model = argv[3] if len(argv) > 3 else "default"
    client = openai.OpenAI(base_url=base_url, api_key=key)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Say hello."}]
    )
    answer = raw.parse()
    print(answer.choices[0].message.content)
    print(f"  usage: {answer.usage}  gateway overhead: {raw.headers.get('x-voidllm-overhead-ms')} ms")
    stream = client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": "Count to five."}]
    )
    for chunk in stream:
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
