"""Content-Encoding decoded under a cap, in bounded steps."""

from __future__ import annotations

import zlib

import pytest

from mesh.net.content_coding import STEP, BodyDecoder, DecodeError, TooLarge


def _pack(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


def gzip(data: bytes) -> bytes:
    return _pack(data, 16 + zlib.MAX_WBITS)


def decode(encodings: list[str], body: bytes, cap: int = 1 << 20, piece: int = 1000) -> bytes:
    decoder = BodyDecoder(encodings, cap)
    out = []
    for at in range(0, len(body), piece):
        out.extend(decoder.feed(body[at:at + piece]))
    out.extend(decoder.finish())
    assert all(len(p) <= STEP for p in out)
    return b"".join(out)


DATA = bytes(range(256)) * 1000


@pytest.mark.parametrize(("encodings", "body"), [
    ([], DATA),
    (["identity"], DATA),
    (["gzip"], gzip(DATA)),
    (["x-gzip"], gzip(DATA)),
    (["GZIP "], gzip(DATA)),
    (["deflate"], zlib.compress(DATA)),
    (["deflate"], _pack(DATA, -zlib.MAX_WBITS)),
    (["deflate", "gzip"], gzip(zlib.compress(DATA))),
    (["gzip", "identity", "gzip"], gzip(gzip(DATA))),
])
def test_each_layer_is_undone_outermost_first(encodings, body):
    assert decode(encodings, body) == DATA


def test_gzip_members_in_a_row_are_one_body():
    assert decode(["gzip"], gzip(DATA[:1000]) + gzip(DATA[1000:])) == DATA


@pytest.mark.parametrize("encodings", [["gzip"], ["gzip", "gzip"], ["deflate"]])
def test_decoding_stops_just_past_the_cap(encodings):
    body = bytes(10 * STEP)
    for name in encodings:
        body = gzip(body) if name == "gzip" else zlib.compress(body)
    decoder = BodyDecoder(encodings, STEP * 3 // 2)
    with pytest.raises(TooLarge) as info:
        for _ in decoder.feed(body):
            pass
    assert STEP * 3 // 2 < info.value.size <= 2 * STEP


def test_the_end_of_the_body_is_inflated_in_steps_too():
    decoder = BodyDecoder(["gzip"], 100 * STEP)
    first = decoder.feed(gzip(bytes(10 * STEP)))
    assert len(next(first)) == STEP  # the rest of this feed is left pending
    pieces = list(decoder.finish())
    assert [len(p) for p in pieces] == [STEP] * 9


def test_an_unknown_coding_is_refused_by_name():
    with pytest.raises(DecodeError) as info:
        BodyDecoder(["gzip", "zstd"], 100)
    assert str(info.value) == "Content-Encoding 'zstd' is not supported (only gzip, deflate and identity)"


@pytest.mark.parametrize(("encodings", "body", "message"), [
    (["gzip"], gzip(DATA)[:-20], "the body ends inside its gzip encoding"),
    (["gzip"], b"", "the body ends before its gzip encoding begins"),
    (["deflate"], zlib.compress(DATA) + b"junk", "the body has data after the end of its deflate encoding"),
])
def test_a_body_that_does_not_match_its_encoding(encodings, body, message):
    with pytest.raises(DecodeError) as info:
        decode(encodings, body)
    assert str(info.value) == message


def test_garbage_is_not_gzip():
    with pytest.raises(DecodeError) as info:
        decode(["gzip"], b"not gzip at all")
    assert str(info.value).startswith("the body is not valid gzip (")
