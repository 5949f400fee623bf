-- The network a bound link opens for (`ip=24` in a file link, `ip24` in a directory link or a
-- folder cookie): the network of that many bits that the client's $remote_addr lies in, as the
-- signer writes it into the signed string (signing/addresses.py, client_network): IPv4
-- "203.0.113.0/24" (8 to 32 bits), IPv6 fully expanded in lower case,
-- "2001:0db8:0001:0002:0000:0000:0000:0000/64" (32 to 128 bits). An IPv4-mapped IPv6 address
-- (::ffff:203.0.113.7, what a dual-stack listener reports) counts as IPv4. Anything else (a
-- length its family does not allow, text that is not an address) gives "!", which no signer
-- signs. Runs only for links that carry a length (secure_link/location/check.conf,
-- secure_link/server/directory.conf and folder.conf).

local bit = require("bit")

local band, lshift, rshift = bit.band, bit.lshift, bit.rshift
local concat, format, find, gmatch, match, sub = table.concat, string.format, string.find, string.gmatch,
    string.match, string.sub

local function ipv4(text)
    local a, b, c, d = match(text, "^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
    if not a then
        return nil
    end
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if a > 255 or b > 255 or c > 255 or d > 255 then
        return nil
    end
    return { a, b, c, d }
end

-- Appends the 16-bit groups of "x:y:z" to `out`; false for a group that is not 1 to 4 hex digits.
local function groups(text, out)
    if text == "" then
        return true
    end
    for group in gmatch(text .. ":", "([^:]*):") do
        if not match(group, "^%x%x?%x?%x?$") then
            return false
        end
        out[#out + 1] = tonumber(group, 16)
    end
    return true
end

-- The eight 16-bit groups of an IPv6 address in any textual form ("::", a dotted IPv4 tail), or nil.
local function ipv6(text)
    local tail = match(text, ":(%d+%.%d+%.%d+%.%d+)$")
    local tail4
    if tail then
        tail4 = ipv4(tail)
        if not tail4 then
            return nil
        end
        text = sub(text, 1, #text - #tail)  -- ends with ":" now: keep "::", drop a single one
        if sub(text, -2) ~= "::" then
            text = sub(text, 1, -2)
        end
    end
    local wanted = tail4 and 6 or 8
    local left, right = {}, {}
    local double = find(text, "::", 1, true)
    if double then
        local after = sub(text, double + 2)
        if find(after, "::", 1, true) or not groups(sub(text, 1, double - 1), left) or not groups(after, right) then
            return nil
        end
        if #left + #right >= wanted then  -- "::" stands for one group at least
            return nil
        end
        for _ = 1, wanted - #left - #right do
            left[#left + 1] = 0
        end
        for _, group in ipairs(right) do
            left[#left + 1] = group
        end
    elseif not groups(text, left) or #left ~= wanted then
        return nil
    end
    if tail4 then
        left[#left + 1] = tail4[1] * 256 + tail4[2]
        left[#left + 1] = tail4[3] * 256 + tail4[4]
    end
    return left
end

-- `value` with only its first `bits` of `width` kept.
local function masked(value, bits, width)
    if bits >= width then
        return value
    end
    if bits <= 0 then
        return 0
    end
    return band(value, band(lshift(0xffff, width - bits), lshift(1, width) - 1))
end

-- "a.b.c.d/bits" or "xxxx:...:xxxx/bits": the first `bits` of `parts` (each `width` bits wide), each
-- written with `form` and joined by `separator`; "!" for fewer than `fewest` bits or more than all.
local function network_text(parts, width, bits, fewest, form, separator)
    if bits < fewest or bits > #parts * width then
        return "!"
    end
    local out = {}
    for i = 1, #parts do
        out[i] = format(form, masked(parts[i], bits - (i - 1) * width, width))
    end
    return concat(out, separator) .. "/" .. format("%d", bits)
end

local _M = {}

function _M.network(address, length)
    local bits = tonumber(length)
    if not bits then
        return "!"
    end
    local v4 = ipv4(address)
    if not v4 then
        local v6 = ipv6(address)
        if not v6 then
            return "!"
        end
        if v6[1] == 0 and v6[2] == 0 and v6[3] == 0 and v6[4] == 0 and v6[5] == 0 and v6[6] == 0xffff then
            v4 = { rshift(v6[7], 8), band(v6[7], 255), rshift(v6[8], 8), band(v6[8], 255) }
        else
            return network_text(v6, 16, bits, 32, "%04x", ":")
        end
    end
    return network_text(v4, 8, bits, 8, "%d", ".")
end

return _M
