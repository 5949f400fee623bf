-- Download-limited links, counted at the origin (Debian's libnginx-mod-http-lua, LuaJIT).
--
-- Used by secure_link/server/origin_limited.conf: take() in the access phase, settle() in the log phase.
-- The count of each link lives in the shared dict secure_link_downloads: ngx.shared's incr
-- is atomic across every worker, so LIMIT racing requests get exactly LIMIT downloads, and
-- the dict outlives a reload (HUP). Every change is also appended to the journal
-- $secure_link_state_root/downloads.journal as one line, "LINK_ID +1 EXPIRES" or
-- "LINK_ID -1 EXPIRES", before the file is sent: after a restart the first limited request
-- adds the journal up again (and rewrites it without the links that have expired), so a
-- restart forgets nothing. signing/nginx/link_state.py reads and writes the same journal.

local dict = ngx.shared.secure_link_downloads
local LOADED, LOADING = "\0loaded", "\0loading"

local M = {}

local journal -- this worker's handle, opened in append mode on first use

-- A failure is logged from a timer, outside the request: nginx would quote the request line,
-- and with it the link's token. Once per worker and message.
local told = {}
local function warn(message)
    if not told[message] then
        told[message] = true
        ngx.timer.at(0, function() ngx.log(ngx.ERR, "secure_link downloads: ", message) end)
    end
end

local function journal_path()
    return ngx.var.secure_link_state_root .. "/downloads.journal"
end

-- After a restart the dict is empty: one worker adds the journal up, the others wait for it.
local function ensure_loaded()
    if dict:get(LOADED) then
        return true
    end
    if not dict:add(LOADING, true, 30) then
        for _ = 1, 300 do
            ngx.sleep(0.01)
            if dict:get(LOADED) then
                return true
            end
        end
        return false
    end
    local path, now = journal_path(), ngx.time()
    local counts, expiry = {}, {}
    local file = io.open(path, "r")
    if file then
        for line in file:lines() do
            local id, delta, expires = line:match("^([A-Za-z0-9_-]+) ([+-]1) (%d+)$")
            if id and tonumber(expires) >= now then
                counts[id] = (counts[id] or 0) + tonumber(delta)
                expiry[id] = expires
            end
        end
        file:close()
    end
    local compacted = {}
    for id, count in pairs(counts) do
        if count > 0 then
            local ok, err = dict:safe_set(id, count, math.max(tonumber(expiry[id]) - now + 1, 1))
            if not ok then
                dict:delete(LOADING)
                warn("the journal does not fit lua_shared_dict secure_link_downloads (" .. tostring(err) .. ")")
                return false
            end
            for _ = 1, count do
                compacted[#compacted + 1] = id .. " +1 " .. expiry[id] .. "\n"
            end
        end
    end
    -- The journal without expired links, written beside it and renamed over it.
    local fresh = io.open(path .. ".compacting", "w")
    if fresh then
        fresh:write(table.concat(compacted))
        fresh:close()
        os.rename(path .. ".compacting", path)
    end
    dict:set(LOADED, true)
    return true
end

local function record(id, delta, expires)
    if not journal then
        journal = io.open(journal_path(), "a")
        if not journal then
            return false
        end
        journal:setvbuf("no") -- unbuffered, O_APPEND: one line, one write(2), so workers' lines never mix
    end
    return journal:write(id .. " " .. delta .. " " .. expires .. "\n") ~= nil
end

-- The access phase of /_secure_link/limited/ID/LIMIT/EXPIRES/PATH (captures of server/origin_limited.conf).
function M.take()
    local var = ngx.var
    local id, limit, expires = var.secure_link_take_id, tonumber(var.secure_link_take_limit),
        var.secure_link_take_expires
    if not ensure_loaded() then
        warn("the journal was not read within 3 s: limited links get 503")
        return ngx.exit(503)
    end
    if ngx.req.get_method() == "HEAD" then -- sends no file bytes: takes nothing
        if (dict:get(id) or 0) >= limit then
            return ngx.exec("/_secure_link_errors/used_up." .. var.secure_link_error_format)
        end
        return
    end
    -- A new count is added without evicting others (safe_add), and lives until the link
    -- expires: a full dict refuses new limited links (503) rather than forget a count.
    local added, add_err = dict:safe_add(id, 0, math.max(tonumber(expires) - ngx.time() + 1, 1))
    if not added and add_err ~= "exists" then
        warn("lua_shared_dict secure_link_downloads is full (" .. tostring(add_err) .. "): new limited links get 503")
        return ngx.exit(503)
    end
    local taken, err = dict:incr(id, 1)
    if not taken then
        warn("the count cannot be taken (" .. tostring(err) .. ")")
        return ngx.exit(503)
    end
    if taken > limit then
        dict:incr(id, -1)
        return ngx.exec("/_secure_link_errors/used_up." .. var.secure_link_error_format)
    end
    if not record(id, "+1", expires) then
        dict:incr(id, -1)
        warn("cannot append to " .. journal_path() .. ": limited links get 503 until it is writable")
        return ngx.exit(503) -- never send a download that a restart would forget
    end
    -- A request's precondition (If-Match, If-Unmodified-Since) could only end it without the
    -- file (412) once counted: a download-limited link is one download, not a cache entry.
    ngx.req.clear_header("If-Match")
    ngx.req.clear_header("If-Unmodified-Since")
    var.secure_link_took = "1" -- a variable, not ngx.ctx: a filter that ends the request clears ctx
end

-- The log phase: a request that took a download but sent no file bytes gives it back
-- (limited.conf has no error pages of its own, so such a request ends in its location).
function M.settle()
    local status = ngx.status
    if ngx.var.secure_link_took == "1" and status ~= 200 and status ~= 206 then
        local var = ngx.var
        dict:incr(var.secure_link_take_id, -1)
        record(var.secure_link_take_id, "-1", var.secure_link_take_expires)
    end
end

return M
