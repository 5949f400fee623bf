-- The chunk that check.conf, directory.conf and folder.conf run with set_by_lua_file for an
-- HMAC-SHA256 link: "SECRET|TOKEN&MESSAGE" in, "" / "0" / "1" out (secure_link/hmac.lua). A
-- chunk runs afresh for every request; the module, loaded once per worker, keeps its state.
return (package.loaded["secure_link.hmac"] or require("secure_link.hmac")).status(ngx.arg[1])
