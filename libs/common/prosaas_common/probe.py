"""Container healthcheck probe: ``python -m prosaas_common.probe URL`` exits 0 only on HTTP 200.

Images are slim (no curl); the interpreter is there anyway. One request, short timeout, one line out.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def probe(url: str, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    if not url.startswith(("http://", "https://")):
        return False, f"not an http(s) URL: {url}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return response.status == 200, f"{response.status} {url}"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {url}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"unreachable {url}: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m prosaas_common.probe URL", file=sys.stderr)
        return 2
    ok, line = probe(args[0])
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
