-- $secure_link_opens_at, run by check.conf with set_by_lua_file for a link that carries a
-- not-before time (`nb`, Unix seconds, signed and checked by then): "" once it has passed,
-- else the moment the link opens, in ISO 8601 UTC.
local not_before = tonumber(ngx.arg[1])
if not_before <= ngx.time() then
    return ""
end
return os.date("!%Y-%m-%dT%H:%M:%SZ", not_before)
