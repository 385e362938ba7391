"""Inline commands: one line of words, as redis-server reads them from telnet or ``nc``.

A line is what precedes ``\\n`` (a ``\\r`` before it is dropped). Its words follow the rules
of redis-server's ``sdssplitargs`` (the function its inline reader calls), so a command
means the same here and on the shard it is forwarded to:

- words are separated by space, tab, CR or LF; leading blanks (also VT and FF) are skipped;
- ``"..."`` may hold spaces and the escapes ``\\n \\r \\t \\b \\a \\xHH`` and ``\\<any>``;
- ``'...'`` may hold spaces and ``\\'``; nothing else is an escape there;
- a quote may open in the middle of a word (``a"b c"`` is ``ab c``), but a closing quote
  must be followed by a blank or the end of the line;
- a NUL octet ends the line (the C function stops at the string's end).

An unterminated quote or a closing quote followed by a non-blank raises ``ValueError``
(redis-server: ``Protocol error: unbalanced quotes in request``). An empty or blank line is
no command at all: redis-server skips it without a reply, and so does the codec.
"""

from __future__ import annotations

_BLANK = frozenset(b" \t\n\r\x0b\x0c")  # C isspace()
_WORD_END = frozenset(b" \n\r\t\0")
_ESCAPES = {ord("n"): 0x0A, ord("r"): 0x0D, ord("t"): 0x09, ord("b"): 0x08, ord("a"): 0x07}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DQ = 0x22
_SQ = 0x27
_BS = 0x5C


def split_inline(line: bytes) -> list[bytes]:
    """The words of inline command ``line`` (without its line ending).

    Raises ``ValueError`` for unbalanced quotes.
    """
    # Fast path: no quotes and no octet where bytes.split() and sdssplitargs disagree.
    if _DQ not in line and _SQ not in line and 0 not in line and 11 not in line and (
        12 not in line
    ):
        return line.split()
    return _split_quoted(line)


def _split_quoted(line: bytes) -> list[bytes]:
    nul = line.find(b"\0")
    if nul >= 0:
        line = line[:nul]
    n = len(line)
    words: list[bytes] = []
    i = 0
    while True:
        while i < n and line[i] in _BLANK:
            i += 1
        if i >= n:
            return words
        word = bytearray()
        in_dq = in_sq = False
        while True:
            if i >= n:
                if in_dq or in_sq:
                    raise ValueError("unbalanced quotes")
                break
            c = line[i]
            if in_dq:
                if (
                    c == _BS
                    and i + 3 < n
                    and line[i + 1] == 0x78  # x
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    word.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == _BS and i + 1 < n:
                    i += 1
                    e = line[i]
                    word.append(_ESCAPES.get(e, e))
                elif c == _DQ:
                    if i + 1 < n and line[i + 1] not in _BLANK:
                        raise ValueError("closing quote must be followed by a space")
                    i += 1
                    break
                else:
                    word.append(c)
            elif in_sq:
                if c == _BS and i + 1 < n and line[i + 1] == _SQ:
                    i += 1
                    word.append(_SQ)
                elif c == _SQ:
                    if i + 1 < n and line[i + 1] not in _BLANK:
                        raise ValueError("closing quote must be followed by a space")
                    i += 1
                    break
                else:
                    word.append(c)
            elif c in _WORD_END:
                i += 1
                break
            elif c == _DQ:
                in_dq = True
            elif c == _SQ:
                in_sq = True
            else:
                word.append(c)
            i += 1
        words.append(bytes(word))
