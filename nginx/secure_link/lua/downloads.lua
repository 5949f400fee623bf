-- Download-limited links, counted by the app for every origin (Debian's libnginx-mod-http-lua).
--
-- Used by secure_link/location/origin_count.conf: take() in the access phase, settle() in the
-- log phase. No count lives in nginx: take() asks one of the app servers of
-- $secure_link_counter (secure_link_counter.conf, written by the installer) to count the
-- download in the app's database (POST /_secure_link/downloads/take; signing/django/counting.py
-- holds the rule), so any number of origins count one count, and it survives the restart of
-- any of them. An answer other than "counted", "resumed" or "open" ends the request: 410 used
-- up, 403 revoked, and 503 when no app server or its database answers (a download is never
-- sent uncounted). settle() tells the app about a request that took a download and did not
-- send the whole file (POST /_secure_link/downloads/settle): it gives the download back, or
-- leaves a resume credit. settle() runs from a timer after the request: the log phase cannot
-- talk to the network.

local M = {}

local TIMEOUT_MS = 3000
local RESUME_FROM = "^bytes=(%d+)%-%d*$" -- one range with a first byte: a resume may start there
local REQUEST_ID = "^%x+$"

-- A failure is logged from a timer, outside the request: nginx would quote the request line,
-- and with it the link's token. Once per worker and message.
local told = {}
local function warn(message)
    if not told[message] then
        told[message] = true
        ngx.timer.at(0, function() ngx.log(ngx.ERR, "secure_link downloads: ", message) end)
    end
end

-- "http://IP:PORT ... unix:/PATH" -> { {host, port, authority}, ... }, parsed once per value.
local parsed = {}
local function addresses(list)
    local found = parsed[list]
    if found then
        return found
    end
    found = {}
    for entry in list:gmatch("%S+") do
        local path = entry:match("^unix:(/.+)$")
        if path then
            found[#found + 1] = { "unix:" .. path, nil, "localhost" }
        else
            local authority = entry:match("^http://(.+)$")
            -- An IPv6 address keeps its brackets: connect() parses "[::1]", not "::1".
            local host, port = (authority or ""):match("^(%[[%x:.]+%]):(%d+)$")
            if not host then
                host, port = (authority or ""):match("^([%d.]+):(%d+)$")
            end
            if host then
                found[#found + 1] = { host, tonumber(port), authority }
            end
        end
    end
    parsed[list] = found
    return found
end

-- POST path to one counter, the next one only when a connection is refused (the request then
-- never reached an app server, so nothing can be counted twice). Returns status, body or nil, why.
local function ask(counters, token, path)
    local list = addresses(counters)
    if #list == 0 then
        return nil, "no download counter is configured (secure_link_counter.conf: install_nginx --counter)"
    end
    local first, why = math.random(#list), nil
    for i = 0, #list - 1 do
        local counter = list[(first + i - 1) % #list + 1]
        local socket = ngx.socket.tcp()
        socket:settimeout(TIMEOUT_MS)
        local connected, err
        if counter[2] then
            connected, err = socket:connect(counter[1], counter[2])
        else
            connected, err = socket:connect(counter[1])
        end
        if connected then
            local sent, send_err = socket:send("POST " .. path .. " HTTP/1.1\r\nHost: " .. counter[3]
                .. "\r\nAuthorization: Bearer " .. token .. "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            if not sent then
                socket:close()
                return nil, "the counter " .. counter[3] .. " failed: " .. tostring(send_err)
            end
            local line, read_err = socket:receive("*l")
            local status = line and tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
            if not status then
                socket:close()
                return nil, "the counter " .. counter[3] .. " gave no answer: " .. tostring(read_err)
            end
            local length = 0
            while true do
                local header = socket:receive("*l")
                if not header or header == "" then
                    break
                end
                length = tonumber(header:lower():match("^content%-length:%s*(%d+)")) or length
            end
            local body = length > 0 and socket:receive(math.min(length, 256)) or ""
            socket:close()
            return status, body or ""
        end
        why = "cannot reach the counter " .. counter[3] .. ": " .. tostring(err)
    end
    return nil, why
end

-- "&request=ID" for an edge's request (server/origin_edges.conf sets its id): the same id when
-- the edge retries the request at another origin, so that the counter takes it once. A client's
-- own request to this origin is never retried by anyone: "".
local function edge_request(var)
    local request = var.secure_link_take_request
    if request and #request == 32 and request:match(REQUEST_ID) then
        return "&request=" .. request
    end
    return ""
end

-- The access phase of /_secure_link/limited/ID/LIMIT/EXPIRES/PATH (captures of origin_limited.conf).
function M.take()
    local var = ngx.var
    local head = ngx.req.get_method() == "HEAD" -- sends no file bytes: takes nothing
    local range = var.http_range
    local start = range == nil and "0" or range:match(RESUME_FROM) -- nil: never a resume
    local path = "/_secure_link/downloads/take?id=" .. var.secure_link_take_id .. "&limit="
        .. var.secure_link_take_limit .. "&expires=" .. var.secure_link_take_expires
        .. (start and ("&start=" .. start) or "") .. (head and "&head=1" or "") .. edge_request(var)
    local status, body = ask(var.secure_link_counter, var.secure_link_counter_token, path)
    local taken = status == 200 and body:match("^(%l+)\n?$")
    if taken == "open" then
        return
    end
    if taken == "counted" or taken == "resumed" then
        -- A precondition (If-Match, If-Unmodified-Since) could only end the request without
        -- the file (412) once counted: a download-limited link is one download, not a cache entry.
        ngx.req.clear_header("If-Match")
        ngx.req.clear_header("If-Unmodified-Since")
        var.secure_link_took = taken -- a variable, not ngx.ctx: a filter that ends the request clears ctx
        var.secure_link_took_start = start or ""
        return
    end
    -- Anything but those three words with a 200 (a wrong address answering, an error page) is
    -- not the counter's yes: 503, never a download uncounted.
    if status == 410 then
        return ngx.exec("/_secure_link_errors/used_up." .. var.secure_link_error_format)
    end
    if status == 403 then
        return ngx.exec("/_secure_link_errors/403." .. var.secure_link_error_format)
    end
    warn(status and ("the counter answered " .. status .. (status == 200 and " without a count" or "")
        .. ": limited links get 503") or (body .. ": limited links get 503"))
    return ngx.exit(503)
end

local function send_settle(premature, counters, token, path)
    local status, why = ask(counters, token, path)
    if status ~= 204 then
        ngx.log(ngx.ERR, "secure_link downloads: a download was not settled (", status or why,
            "): it stays counted")
    end
end

-- The log phase: a request that took something and did not send the whole file tells the app.
-- It sent no file bytes (a status other than 200 and 206): what it took is given back. It was
-- cut short: the app keeps a resume credit where it stopped (one range, or the whole file).
function M.settle()
    local var = ngx.var
    local took = var.secure_link_took
    if took == "" then
        return
    end
    local status, outcome, extra = ngx.status, nil, ""
    if status ~= 200 and status ~= 206 then
        outcome = "none"
    else
        local length, sent = tonumber(var.sent_http_content_length), tonumber(var.body_bytes_sent) or 0
        local start = status == 200 and "0" or (var.sent_http_content_range and var.secure_link_took_start or "")
        if not length or sent >= length or start == "" then
            return -- the whole answer was sent (or a multi-range one, which never resumes)
        end
        outcome, extra = "cut", "&start=" .. start .. "&sent=" .. sent
    end
    ngx.timer.at(0, send_settle, var.secure_link_counter, var.secure_link_counter_token,
        "/_secure_link/downloads/settle?id=" .. var.secure_link_take_id .. "&took=" .. took
            .. "&outcome=" .. outcome .. extra .. edge_request(var))
end

return M
