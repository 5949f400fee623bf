-- SHA-256 and HMAC-SHA256 through LuaJIT's FFI to OpenSSL, which nginx has loaded already:
-- shared by the HMAC-SHA256 check of links (hmac.lua) and the signer of the origin's fetches
-- from a bucket (s3.lua). OpenSSL's low-level SHA256_* calls take no algorithm lookup, and an
-- HMAC key's two pads are hashed once (pads()), so an HMAC costs two SHA-256 compressions
-- and the message.

local ffi = require("ffi")
local bit = require("bit")

local C = ffi.C
local bxor = bit.bxor
local byte = string.byte

-- Declared under names of this project's own (asm labels point them at OpenSSL's symbols), so
-- that other Lua code in the worker declaring SHA256_* or SHA256_CTX its own way does not clash.
ffi.cdef [[
typedef struct {
    unsigned int h[8];
    unsigned int Nl, Nh;
    unsigned int data[16];
    unsigned int num, md_len;
} secure_link_sha256_ctx;
int secure_link_SHA256_Init(secure_link_sha256_ctx *c) asm("SHA256_Init");
int secure_link_SHA256_Update(secure_link_sha256_ctx *c, const void *data, size_t len) asm("SHA256_Update");
int secure_link_SHA256_Final(unsigned char *md, secure_link_sha256_ctx *c) asm("SHA256_Final");
int secure_link_CRYPTO_memcmp(const void *a, const void *b, size_t len) asm("CRYPTO_memcmp");
]]

local CTX = ffi.typeof("secure_link_sha256_ctx")
local CTX_SIZE = ffi.sizeof(CTX)
local BLOCK = 64
local scratch = CTX()
local digest = ffi.new("unsigned char[32]")

local _M = {CTX = CTX, CTX_SIZE = CTX_SIZE}

-- The SHA-256 states after the key's inner and outer pads: {inner, outer}, for hmac().
function _M.pads(key)
    if #key > BLOCK then  -- a long key is hashed first
        C.secure_link_SHA256_Init(scratch)
        C.secure_link_SHA256_Update(scratch, key, #key)
        C.secure_link_SHA256_Final(digest, scratch)
        key = ffi.string(digest, 32)
    end
    local inner_pad, outer_pad = ffi.new("unsigned char[64]"), ffi.new("unsigned char[64]")
    for i = 0, BLOCK - 1 do
        local b = byte(key, i + 1) or 0
        inner_pad[i], outer_pad[i] = bxor(b, 0x36), bxor(b, 0x5c)
    end
    local inner, outer = CTX(), CTX()
    C.secure_link_SHA256_Init(inner)
    C.secure_link_SHA256_Update(inner, inner_pad, BLOCK)
    C.secure_link_SHA256_Init(outer)
    C.secure_link_SHA256_Update(outer, outer_pad, BLOCK)
    return {inner, outer}
end

-- HMAC-SHA256 of `data` (a string) with the key of `pads`, into `out` (unsigned char[32]).
function _M.hmac(pads, data, out)
    ffi.copy(scratch, pads[1], CTX_SIZE)
    C.secure_link_SHA256_Update(scratch, data, #data)
    C.secure_link_SHA256_Final(out, scratch)
    ffi.copy(scratch, pads[2], CTX_SIZE)
    C.secure_link_SHA256_Update(scratch, out, 32)
    C.secure_link_SHA256_Final(out, scratch)
end

-- Whether strings `a` and `b` are equal, in time that does not depend on where they differ.
function _M.same(a, b)
    return #a == #b and C.secure_link_CRYPTO_memcmp(a, b, #a) == 0
end

-- SHA-256 of `data` (a string) into `out` (unsigned char[32]).
function _M.digest(data, out)
    C.secure_link_SHA256_Init(scratch)
    C.secure_link_SHA256_Update(scratch, data, #data)
    C.secure_link_SHA256_Final(out, scratch)
end

return _M
