-- Start times: opens_at() gives $secure_link_opens_at for a link that carries a not-before
-- time (`nb`, Unix seconds, signed and checked by then); secure_link/location/check.conf runs
-- it with set_by_lua, only for links that carry one. "" once the time has passed, else the
-- moment the link opens, in ISO 8601 UTC.

local ngx_time = ngx.time

local _M = {}

function _M.opens_at(text)
    local not_before = tonumber(text)
    if not_before <= ngx_time() then
        return ""
    end
    return os.date("!%Y-%m-%dT%H:%M:%SZ", not_before)
end

return _M
