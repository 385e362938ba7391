"""Golden requests (decoded by Role.SERVER): bytes literals, one wire line per source line,
as curl 8.x, Firefox, ApacheBench and RFC 6455's WebSocket handshake send them; the expected
events are written by hand (see ``vectors`` for the notation and the harness)."""

from __future__ import annotations

from .vectors import CLOSED, D, H, R, S, T, Vector, req_fields

REQUESTS = [
    Vector(
        "curl_get",
        S,
        b"GET /index.html?q=1 HTTP/1.1\r\n"  # origin-form target with a query
        b"Host: example.com\r\n"  # becomes :authority, not a field
        b"User-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\n"
        b"\r\n",
        [
            H(
                1,
                req_fields(
                    "/index.html?q=1",
                    "example.com",
                    ("user-agent", "curl/8.5.0"),
                    ("accept", "*/*"),
                ),
                end=True,
            )
        ],
    ),
    Vector(
        "firefox_get",
        S,
        b"GET /app/ HTTP/1.1\r\n"
        b"Host: localhost:8080\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-US,en;q=0.5\r\n"
        b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Connection: keep-alive\r\n"  # kept: hop-by-hop removal is the proxy's job
        b"Cookie: session=abc123; theme=dark\r\n"
        b"Upgrade-Insecure-Requests: 1\r\n"
        b"Sec-Fetch-Dest: document\r\n"
        b"Sec-Fetch-Mode: navigate\r\n"
        b"Sec-Fetch-Site: none\r\n"
        b"Sec-Fetch-User: ?1\r\n"
        b"Priority: u=0, i\r\n"
        b"\r\n",
        [
            H(
                1,
                req_fields(
                    "/app/",
                    "localhost:8080",
                    (
                        "user-agent",
                        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                    ),
                    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                    ("accept-language", "en-US,en;q=0.5"),
                    ("accept-encoding", "gzip, deflate, br, zstd"),
                    ("connection", "keep-alive"),
                    ("cookie", "session=abc123; theme=dark"),
                    ("upgrade-insecure-requests", "1"),
                    ("sec-fetch-dest", "document"),
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-site", "none"),
                    ("sec-fetch-user", "?1"),
                    ("priority", "u=0, i"),
                ),
                end=True,
            )
        ],
    ),
    Vector(
        "curl_post_form",
        S,
        b"POST /submit HTTP/1.1\r\n"
        b"Host: localhost:8080\r\n"
        b"User-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\n"
        b"Content-Length: 27\r\n"  # length-delimited body (RFC 9112 §6.3 rule 6)
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"\r\n"
        b"name=mosn&lang=python&x=%20",  # 27 octets
        [
            H(
                1,
                req_fields(
                    "/submit",
                    "localhost:8080",
                    ("user-agent", "curl/8.5.0"),
                    ("accept", "*/*"),
                    ("content-length", "27"),
                    ("content-type", "application/x-www-form-urlencoded"),
                    method="POST",
                ),
                end=False,
            ),
            D(1, b"name=mosn&lang=python&x=%20", True),
        ],
    ),
    Vector(
        "curl_chunked_upload",
        S,
        b"POST /upload HTTP/1.1\r\n"
        b"Host: localhost:8080\r\n"
        b"User-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"\r\n"
        b"7\r\n"  # chunk-size
        b"Mozilla\r\n"
        b"11;name=value\r\n"  # 0x11 = 17, with a chunk extension (dropped)
        b"Developer Network\r\n"
        b"0\r\n"  # last-chunk
        b"Expires: Wed, 21 Oct 2015 07:28:00 GMT\r\n"  # trailer section
        b"\r\n",
        [
            H(
                1,
                req_fields(
                    "/upload",
                    "localhost:8080",
                    ("user-agent", "curl/8.5.0"),
                    ("accept", "*/*"),
                    ("transfer-encoding", "chunked"),
                    ("content-type", "application/octet-stream"),
                    method="POST",
                ),
                end=False,
            ),
            D(1, b"MozillaDeveloper Network", False),
            T(1, [("expires", "Wed, 21 Oct 2015 07:28:00 GMT")]),
        ],
    ),
    Vector(
        "chunked_hex_case_no_trailers",
        S,
        b"PUT /x HTTP/1.1\r\n"
        b"Host: a\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"\r\n"
        b"000A\r\n"  # leading zeros, upper-case hex: 10
        b"0123456789\r\n"
        b"000\r\n"  # last-chunk = 1*"0"
        b"\r\n",
        [
            H(1, req_fields("/x", "a", ("transfer-encoding", "chunked"), method="PUT"), end=False),
            D(1, b"0123456789", True),
        ],
    ),
    Vector(
        "curl_expect_100",
        S,
        b"PUT /big HTTP/1.1\r\n"
        b"Host: a\r\n"
        b"User-Agent: curl/8.5.0\r\n"
        b"Accept: */*\r\n"
        b"Content-Length: 5\r\n"
        b"Expect: 100-continue\r\n"  # surfaced; the proxy decides (RFC 9110 §10.1.1)
        b"\r\n"
        b"hello",
        [
            H(
                1,
                req_fields(
                    "/big",
                    "a",
                    ("user-agent", "curl/8.5.0"),
                    ("accept", "*/*"),
                    ("content-length", "5"),
                    ("expect", "100-continue"),
                    method="PUT",
                ),
                end=False,
                expect=True,
            ),
            D(1, b"hello", True),
        ],
    ),
    Vector(
        "ab_http10",
        S,
        b"GET / HTTP/1.0\r\n"  # HTTP/1.0 without keep-alive: close after the response
        b"Host: 127.0.0.1:8080\r\n"
        b"User-Agent: ApacheBench/2.3\r\n"
        b"Accept: */*\r\n"
        b"\r\n"
        b"GET /never HTTP/1.0\r\n\r\n",  # ignored: nothing follows a closing message (§9.6)
        [
            H(
                1,
                req_fields(
                    "/", "127.0.0.1:8080", ("user-agent", "ApacheBench/2.3"), ("accept", "*/*")
                ),
                end=True,
                version="1.0",
                keep_alive=False,
            ),
            CLOSED,
        ],
        eof=True,
    ),
    Vector(
        "http10_keep_alive",
        S,
        b"GET /a HTTP/1.0\r\n"
        b"Connection: Keep-Alive\r\n"  # HTTP/1.0 persistence (RFC 9112 §9.3)
        b"\r\n"  # no Host: allowed in HTTP/1.0, :authority is ""
        b"GET /b HTTP/1.0\r\n"
        b"\r\n",
        [
            H(1, req_fields("/a", "", ("connection", "Keep-Alive")), end=True, version="1.0"),
            H(2, req_fields("/b", ""), end=True, version="1.0", keep_alive=False),
            CLOSED,
        ],
        eof=True,
    ),
    Vector(
        "pipelined",
        S,
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"DELETE /4 HTTP/1.1\r\nHost: a\r\n\r\n",
        [
            H(1, req_fields("/1", "a"), end=True),
            H(2, req_fields("/2", "a"), end=True),
            H(3, req_fields("/3", "a", ("content-length", "3"), method="POST"), end=False),
            D(3, b"abc", True),
            H(4, req_fields("/4", "a", method="DELETE"), end=True),
            CLOSED,
        ],
        eof=True,
    ),
    Vector(
        "absolute_form",
        S,
        b"GET http://example.com:8080/x?y=1 HTTP/1.1\r\n"  # forward-proxy form (§3.2.2)
        b"Host: example.com:8080\r\n"
        b"Proxy-Connection: Keep-Alive\r\n"
        b"\r\n",
        [
            H(
                1,
                req_fields("/x?y=1", "example.com:8080", ("proxy-connection", "Keep-Alive")),
                end=True,
            )
        ],
    ),
    Vector(
        "absolute_form_ipv6_https",
        S,
        b"GET HTTPS://[::1]:8443 HTTP/1.1\r\n"  # scheme case-insensitive, no path: "/"
        b"Host: [::1]:8443\r\n"
        b"\r\n",
        [
            H(
                1,
                [
                    (":method", "GET"),
                    (":scheme", "https"),
                    (":authority", "[::1]:8443"),
                    (":path", "/"),
                ],
                end=True,
            )
        ],
    ),
    Vector(
        "options_asterisk",
        S,
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",  # asterisk-form (§3.2.4)
        [H(1, req_fields("*", "a", method="OPTIONS"), end=True)],
    ),
    Vector(
        "websocket_handshake",
        S,
        b"GET /chat HTTP/1.1\r\n"  # RFC 6455 §1.2
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Origin: http://example.com\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
        b"\x81\x85",  # an early frame: held until the response decides
        [
            H(
                1,
                req_fields(
                    "/chat",
                    "server.example.com",
                    ("upgrade", "websocket"),
                    ("connection", "Upgrade"),
                    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("origin", "http://example.com"),
                    ("sec-websocket-protocol", "chat, superchat"),
                    ("sec-websocket-version", "13"),
                ),
                end=False,
                upgrade=True,
            )
        ],
    ),
    Vector(
        "curl_connect",
        S,
        b"CONNECT example.com:443 HTTP/1.1\r\n"  # authority-form (§3.2.3)
        b"Host: example.com:443\r\n"
        b"User-Agent: curl/8.5.0\r\n"
        b"Proxy-Connection: Keep-Alive\r\n"
        b"\r\n",
        [
            H(
                1,
                [
                    (":method", "CONNECT"),
                    (":authority", "example.com:443"),
                    ("user-agent", "curl/8.5.0"),
                    ("proxy-connection", "Keep-Alive"),
                ],
                end=False,
                upgrade=True,
            )
        ],
    ),
    Vector(
        "leading_empty_lines",
        S,
        b"\r\n\r\n"  # ignored before a request-line (RFC 9112 §2.2)
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        [H(1, req_fields("/", "a"), end=True)],
    ),
    Vector(
        "obs_text_and_repeats",
        S,
        b"GET / HTTP/1.1\r\n"
        b"Host: a\r\n"
        b"X-Name: caf\xe9\r\n"  # obs-text, decoded as latin-1 (RFC 9110 §5.5)
        b"Accept: text/html\r\n"
        b"Accept: */*\r\n"  # a repeated field keeps both lines, in order
        b"X-Empty:\r\n"  # empty value
        b"X-Pad:  v \t\r\n"  # OWS around the value is not part of it (§5.1)
        b"\r\n",
        [
            H(
                1,
                req_fields(
                    "/",
                    "a",
                    ("x-name", "caf\xe9"),
                    ("accept", "text/html"),
                    ("accept", "*/*"),
                    ("x-empty", ""),
                    ("x-pad", "v"),
                ),
                end=True,
            )
        ],
    ),
    Vector(
        "connection_close",
        S,
        b"GET / HTTP/1.1\r\n"
        b"Host: a\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"GET /ignored HTTP/1.1\r\nHost: a\r\n\r\n",  # after close: never read (§9.6)
        [
            H(1, req_fields("/", "a", ("connection", "close")), end=True, keep_alive=False),
            CLOSED,
        ],
        eof=True,
    ),
    Vector(
        "eof_in_body_resets",
        S,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
        b"12345",  # the client went away 5 octets short
        [
            H(1, req_fields("/", "a", ("content-length", "10"), method="POST"), end=False),
            D(1, b"12345", False),
            R(1),
            CLOSED,
        ],
        eof=True,
    ),
    Vector(
        "eof_in_chunk_data_resets",
        S,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"a\r\n0123",  # 10 announced, 4 sent
        [
            H(1, req_fields("/", "a", ("transfer-encoding", "chunked"), method="POST"), end=False),
            D(1, b"0123", False),
            R(1),
            CLOSED,
        ],
        eof=True,
    ),
    Vector(
        "eof_in_chunk_size_resets",
        S,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n1",  # the next size line is cut
        [
            H(1, req_fields("/", "a", ("transfer-encoding", "chunked"), method="POST"), end=False),
            D(1, b"abc", False),
            R(1),
            CLOSED,
        ],
        eof=True,
    ),
]
