-- The origin's fetches from a bucket, signed with AWS Signature Version 4 (header form) through
-- secure_link/lua/sha256.lua: sign() runs in the rewrite phase of the signer's location
-- (secure_link/server/s3_signer.conf), for cache misses only, and sets the variables the
-- proxied request is made of: the path it sends, byte for byte the canonical URI it signed,
-- the date and the Authorization header. The bucket, its host and region, the origin's
-- read-only credentials, the gate value and the freshness bound come from the variables of
-- secure_link_bucket.conf (the installer's).
--
-- The signer signs for its own cache tier alone: its unix socket is open to every local user
-- (nginx makes it 0666), so a request must carry the gate value the tier sends, and asks for
-- an object: GET or HEAD, a key that does not end with "/" ("/" alone would list the bucket).
--
-- Known traps of other signers, avoided here: the path is built from the object key, each byte
-- outside A-Z a-z 0-9 - . _ ~ percent-encoded ('/' kept, '//' never collapsed), and sent as
-- signed; date and time come from one instant; the signing key is derived once per (date,
-- region, service, access key) and kept, not recomputed for every request.

local ffi = require("ffi")
local bit = require("bit")
local sha256 = require("secure_link.lua.sha256")

local band, rshift = bit.band, bit.rshift
local byte, format, gsub, sub = string.byte, string.format, string.gsub, string.sub
local os_date, ngx_time = os.date, ngx.time

local SLASH = 47
local EMPTY_PAYLOAD = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  -- GET and HEAD send none
local SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
local HEX = "0123456789abcdef"
local digest = ffi.new("unsigned char[32]")
local hex_out = ffi.new("unsigned char[64]")

local function hex(bytes)
    for i = 0, 31 do
        local b = bytes[i]
        hex_out[2 * i] = byte(HEX, rshift(b, 4) + 1)
        hex_out[2 * i + 1] = byte(HEX, band(b, 15) + 1)
    end
    return ffi.string(hex_out, 64)
end

local function hmac(key, data)
    sha256.hmac(sha256.pads(key), data, digest)
    return ffi.string(digest, 32)
end

-- The signing key's HMAC pads for one scope; the last one derived is kept (a new date, region
-- or access key derives the next: once a day per worker).
local scope_kept, pads_kept

local function signing_pads(scope, date, region, key_id, secret)
    local wanted = scope .. key_id
    if wanted ~= scope_kept then
        local key = hmac(hmac(hmac(hmac("AWS4" .. secret, date), region), "s3"), "aws4_request")
        scope_kept, pads_kept = wanted, sha256.pads(key)
    end
    return pads_kept
end

local function percent_encoded(character)
    return format("%%%02X", byte(character))
end

-- The canonical URI of the object key in `path` ("/KEY", as the request's $uri holds it).
local function canonical_uri(prefix, path)
    return prefix .. gsub(path, "[^A-Za-z0-9%-%._~/]", percent_encoded)
end

local _M = {}

function _M.sign()
    local var = ngx.var
    local gate = var.http_x_secure_link_gate
    if not gate or not sha256.same(gate, var.secure_link_s3_gate) then
        return ngx.exit(403)  -- not the origin's cache tier
    end
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" then
        return ngx.exit(405)
    end
    local path = var.uri
    if byte(path, -1) == SLASH then
        return ngx.exit(404)  -- no object's key: "/KEY/" or "/", which S3 would answer with a listing
    end
    local now = ngx_time()
    local amz_date = os_date("!%Y%m%dT%H%M%SZ", now)
    local date = sub(amz_date, 1, 8)
    local region, key_id = var.secure_link_s3_region, var.secure_link_s3_key_id
    local uri = canonical_uri(var.secure_link_s3_prefix, path)
    local canonical = method .. "\n" .. uri .. "\n\nhost:" .. var.secure_link_s3_host
        .. "\nx-amz-content-sha256:" .. EMPTY_PAYLOAD .. "\nx-amz-date:" .. amz_date .. "\n\n"
        .. SIGNED_HEADERS .. "\n" .. EMPTY_PAYLOAD
    sha256.digest(canonical, digest)
    local scope = date .. "/" .. region .. "/s3/aws4_request"
    local to_sign = "AWS4-HMAC-SHA256\n" .. amz_date .. "\n" .. scope .. "\n" .. hex(digest)
    sha256.hmac(signing_pads(scope, date, region, key_id, var.secure_link_s3_secret), to_sign, digest)
    var.secure_link_s3_uri = uri
    var.secure_link_s3_date = amz_date
    var.secure_link_s3_authorization = "AWS4-HMAC-SHA256 Credential=" .. key_id .. "/" .. scope
        .. ", SignedHeaders=" .. SIGNED_HEADERS .. ", Signature=" .. hex(digest)
end

-- What the storage says never reaches a client as it said it. Its own headers (x-amz-*, and
-- MinIO's, Ceph's and SeaweedFS's) are dropped before the origin's cache stores them. An
-- answer that is not a file carries no body of the storage's (its XML): a missing object stays
-- a 404 (the origin answers it with its own page); a refusal of the origin's request (400,
-- 401, 403: credentials, clock) or a failure of the storage becomes a 502, and the body filter
-- names the storage's reason in one error-log line (the object key is in it, never a token).
-- An empty object, which S3 answers with 416 to the range the slice module always asks, is an
-- empty 200. What may be cached carries X-Accel-Expires: the freshness bound, for the cache
-- tier alone (nginx keeps X-Accel-* from clients).
local OWN_HEADERS = {"^x%-amz%-", "^x%-minio%-", "^x%-rgw%-", "^seaweed%-"}
local PASSED = {[200] = true, [206] = true, [304] = true, [404] = true, [412] = true, [416] = true}

function _M.header_filter()
    local var = ngx.var
    if not var.upstream_status then
        return  -- the signer's own refusal (403, 404, 405 from sign()): not the storage's answer
    end
    for name in pairs(ngx.resp.get_headers(0)) do  -- names in lower case
        for _, pattern in ipairs(OWN_HEADERS) do
            if name:find(pattern) then
                ngx.header[name] = nil
                break
            end
        end
    end
    local status = ngx.status
    if status == 416 and ngx.header["Content-Range"] == "bytes */0" then
        ngx.ctx.secure_link_s3_empty = true
        ngx.status = 200
        ngx.header.content_range = nil
        ngx.header.content_type = nil
        ngx.header.content_length = 0
        status = 200
    end
    if status < 300 or status == 304 then
        ngx.header["X-Accel-Expires"] = var.secure_link_s3_freshness
        return
    end
    ngx.ctx.secure_link_s3_status = status
    ngx.header.content_length = nil
    ngx.header.content_type = nil
    if not PASSED[status] then
        ngx.status = 502
    end
end

function _M.body_filter()
    local ctx = ngx.ctx
    if ctx.secure_link_s3_empty then
        ngx.arg[1] = ""  -- the storage's XML about the range
        return
    end
    local status = ctx.secure_link_s3_status
    if not status then
        return
    end
    local seen = (ctx.secure_link_s3_body or "") .. (ngx.arg[1] or "")
    ngx.arg[1] = ""
    if PASSED[status] or ctx.secure_link_s3_logged or (not ngx.arg[2] and #seen < 4096) then
        ctx.secure_link_s3_body = not PASSED[status] and seen or nil
        return
    end
    ctx.secure_link_s3_logged = true
    local code = seen:match("<Code>([%w%.]+)</Code>") or "no reason given"
    if status == 400 or status == 401 or status == 403 then
        ngx.log(ngx.ERR, "secure_link s3: the storage refused the origin's fetch (", status, " ", code,
                "): check the origin's credentials and bucket in secure_link_bucket.conf, and its clock")
    else
        ngx.log(ngx.ERR, "secure_link s3: the storage failed the origin's fetch (", status, " ", code, ")")
    end
end

return _M
