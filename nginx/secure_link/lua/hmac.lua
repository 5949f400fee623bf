-- HMAC-SHA256 links, checked in LuaJIT (Debian's libnginx-mod-http-lua, the engine that also
-- counts download-limited links) through its FFI to OpenSSL's SHA-256, which nginx has
-- loaded already. status() answers as nginx's $secure_link does: "" (invalid: 403), "0"
-- (valid but expired: 410) or "1" (valid). secure_link/location/check.conf,
-- server/directory.conf and server/folder.conf call it with set_by_lua; secure_link/http/lua.conf
-- loads it when nginx reads its config.
--
-- HMAC (RFC 2104) is SHA-256 over the key's inner pad and the message, then over the outer
-- pad and that digest (secure_link/lua/sha256.lua). The two pads' SHA-256 states are computed
-- once per key and worker (a worker's keys change only with a reload, which starts new
-- workers), so a check hashes the message and 32 bytes: no allocation, no OpenSSL provider lookup per request (the
-- one-shot HMAC() of OpenSSL 3, which set-misc's set_hmac_sha256 calls, looks its algorithm
-- up on every call: the engines side by side are in benchmarks/README.md).

local ffi = require("ffi")
local sha256 = require("secure_link.lua.sha256")
require("ngx.base64")  -- declares nginx's own ngx_encode_base64url for the FFI

local C = ffi.C
local find, sub = string.find, string.sub
local ngx_time = ngx.time

local CTX_SIZE = sha256.CTX_SIZE
local TOKEN_LENGTH = 43  -- 32 bytes in unpadded base64url
local scratch = sha256.CTX()
local digest = ffi.new("unsigned char[32]")
local encoded = ffi.new("unsigned char[44]")
local digest_str = ffi.new("ngx_str_t[1]", {{32, digest}})
local encoded_str = ffi.new("ngx_str_t[1]", {{44, encoded}})
local pads = {}  -- secret -> {inner state, outer state}

local function keyed(secret)
    local found = sha256.pads(secret)
    pads[secret] = found
    return found
end

-- expires as the signer writes it: 1 to 15 digits (exact in a double), above 0, ending at
-- byte `stop` (exclusive) of the text at `at`; else -1.
local function read_expires(at, stop)
    local length = stop
    if length == 0 or length > 15 then
        return -1
    end
    local value = 0
    for i = 0, length - 1 do
        local digit = at[i] - 48
        if digit < 0 or digit > 9 then
            return -1
        end
        value = value * 10 + digit
    end
    return value
end

local _M = {}

-- check: "SECRET|TOKEN&MESSAGE", one value so that nginx hands it over in one piece. SECRET
-- is the key's ("" when the link's key id has no HMAC key; a secret holds no "|"), TOKEN
-- the link's (a query argument's raw value holds no "&"), MESSAGE the signed string
-- (docs/link-format.md), which starts with the expires field.
function _M.status(check)
    local bar = find(check, "|", 1, true)
    local amp = bar and find(check, "&", bar + 1, true)
    if bar == nil or bar == 1 or amp == nil or amp - bar - 1 ~= TOKEN_LENGTH then
        return ""
    end
    local bytes = ffi.cast("const unsigned char *", check)
    local message, message_length = bytes + amp, #check - amp
    local expires_end = find(check, "|", amp + 1, true)
    local expires = read_expires(message, expires_end and expires_end - amp - 1 or message_length)
    if expires <= 0 then
        return ""
    end
    local secret = sub(check, 1, bar - 1)
    local pad = pads[secret] or keyed(secret)
    ffi.copy(scratch, pad[1], CTX_SIZE)
    C.secure_link_SHA256_Update(scratch, message, message_length)
    C.secure_link_SHA256_Final(digest, scratch)
    ffi.copy(scratch, pad[2], CTX_SIZE)
    C.secure_link_SHA256_Update(scratch, digest, 32)
    C.secure_link_SHA256_Final(digest, scratch)
    -- The token the link should carry, in canonical unpadded base64url (so a token in any
    -- other form cannot match), compared by OpenSSL's constant-time CRYPTO_memcmp: how long
    -- the comparison takes tells nothing about how much of a forged token is right. The
    -- expected token never becomes a Lua string (LuaJIT would intern it, comparing it with
    -- strings of the same hash).
    C.ngx_encode_base64url(encoded_str, digest_str)
    if C.secure_link_CRYPTO_memcmp(encoded, bytes + bar, TOKEN_LENGTH) ~= 0 then
        return ""
    end
    return expires < ngx_time() and "0" or "1"
end

return _M
