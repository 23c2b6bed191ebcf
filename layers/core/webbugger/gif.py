"""The 1x1 transparent GIF that pixel mode answers with."""

# GIF89a, 1x1, a two-colour global table, a graphic control extension marking colour 0
# transparent, and one LZW-coded pixel of colour 0: 43 bytes, the form mail clients accept
# (the 35-byte minimum is rejected by some decoders).
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# Never cached by a browser or shared cache: every open must reach us.
NO_CACHE_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
