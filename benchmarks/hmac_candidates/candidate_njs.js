// HMAC-SHA256 links, checked by njs (Debian's libnginx-mod-http-js, njs 0.7.9).
//
// fileStatus, directoryStatus and folderStatus return what nginx's $secure_link would: "" (invalid: 403),
// "0" (valid but expired: 410) or "1" (valid). The signed string is the MD5 links' string
// without the secret field (see docs/link-format.md): nginx builds all of it but the
// path in $secure_link_hmac_head / $secure_link_dir_hmac_head, and it is keyed by the secret
// of an HMAC-SHA256 key; an MD5 key's id has no HMAC secret here, so its links are refused.
// The path is hashed as the raw bytes of $uri, never as a JavaScript string: a byte that
// is not UTF-8 would otherwise change the hash.

var crypto = require('crypto');

// Like nginx's secure_link expires, but 1-15 digits so the value is exact in a JS number.
var EXPIRES = /^[0-9]{1,15}$/;

// njs 0.7.9 has no crypto.timingSafeEqual, and both === and Buffer.compare stop at the first
// difference, which would tell an attacker how much of a forged token is right. So compare
// the 32 bytes by hand, in 8 words, accumulating the differences with no early exit. Only
// the canonical encoding of a token is accepted (as by signing/algorithms.py); that check looks
// at the attacker's own input alone, so its timing reveals nothing about the secret.
function constantTimeEqual(given, expected) {
    var difference = 0;
    for (var i = 0; i < 32; i += 4) {
        difference |= given.readUInt32LE(i) ^ expected.readUInt32LE(i);
    }
    return difference === 0;
}

function canonicalToken(token) {
    if (token.length !== 43) {
        return null;
    }
    var bytes = Buffer.from(token, 'base64url');
    return bytes.length === 32 && bytes.toString('base64url') === token ? bytes : null;
}

// head: the signed string up to the path, built by nginx (secure_link/rules.conf); it
// starts with the expires field. path: the raw bytes the link signs.
function status(secret, token, head, path) {
    var expiresText = head.slice(0, head.indexOf("|"));
    if (!secret || !token || !EXPIRES.test(expiresText)) {
        return "";
    }
    var expires = Number(expiresText);
    if (expires <= 0) {
        return "";
    }
    var given = canonicalToken(token);
    if (given === null) {
        return "";
    }
    var expected = crypto.createHmac('sha256', secret).update(head).update(path).digest();
    if (!constantTimeEqual(given, expected)) {
        return "";
    }
    return expires < Math.floor(Date.now() / 1000) ? "0" : "1";
}

// A file link: ?hmac=TOKEN&expires=E&kid=K[&ip=1][&disposition=D][&filename=F]
function fileStatus(r) {
    var v = r.variables;
    return status(v.secure_link_hmac_secret, v.arg_hmac, v.secure_link_hmac_head, r.rawVariables.uri);
}

// A directory link: PREFIX/-/KID,EXPIRES[,ip],TOKEN/FILE (the captures of its location)
function directoryStatus(r) {
    var v = r.variables;
    return status(v.secure_link_dir_hmac_secret, v.secure_link_dir_token, v.secure_link_dir_hmac_head,
                  r.rawVariables.secure_link_dir);
}

// A folder cookie: FOLDER:KID:EXPIRES[:ip]:TOKEN (the captures of rules.conf's pattern)
function folderStatus(r) {
    var v = r.variables;
    return status(v.secure_link_cookie_hmac_secret, v.secure_link_cookie_token, v.secure_link_cookie_hmac_head,
                  r.rawVariables.secure_link_cookie_folder);
}

// $secure_link_opens_at for a link with a not-before time (`nb`, Unix seconds, signed and
// checked by then): "" once it has passed, else the moment it opens, in ISO 8601 UTC.
function opensAt(r) {
    var notBefore = Number(r.variables.secure_link_nb);
    if (!(notBefore > Math.floor(Date.now() / 1000))) {
        return "";
    }
    return new Date(notBefore * 1000).toISOString().replace(/\.000Z$/, "Z");
}

export default {fileStatus, directoryStatus, folderStatus, opensAt};
