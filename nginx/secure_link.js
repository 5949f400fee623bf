// HMAC-SHA256 links, checked by njs (Debian's libnginx-mod-http-js, njs 0.7.9).
//
// fileStatus and directoryStatus return what nginx's $secure_link would: "" (invalid: 403),
// "0" (valid but expired: 410) or "1" (valid). The signed string is the MD5 links' string
// without the secret field (see signing/secure_link.py), keyed by the secret of an
// HMAC-SHA256 key; an MD5 key's id has no HMAC secret here, so its links are refused.
// The path is hashed as the raw bytes of $uri, never as a JavaScript string: a byte that
// is not UTF-8 would otherwise change the hash.

var crypto = require('crypto');

// Like nginx's secure_link expires, but 1-15 digits so the value is exact in a JS number.
var EXPIRES = /^[0-9]{1,15}$/;

// njs 0.7.9 has no crypto.timingSafeEqual and === returns at the first differing
// character, which would tell an attacker how much of a forged token is right. Compare
// every character and accumulate the differences instead. The length is not secret:
// every genuine token has 43 characters.
function constantTimeEqual(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    var difference = 0;
    for (var i = 0; i < a.length; i++) {
        difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return difference === 0;
}

function status(secret, token, expiresText, head, path) {
    if (!secret || !token || !EXPIRES.test(expiresText)) {
        return "";
    }
    var expires = Number(expiresText);
    if (expires <= 0) {
        return "";
    }
    var expected = crypto.createHmac('sha256', secret)
        .update(Buffer.concat([Buffer.from(head), path]))
        .digest('base64url');
    if (!constantTimeEqual(token, expected)) {
        return "";
    }
    return expires < Math.floor(Date.now() / 1000) ? "0" : "1";
}

// A file link: ?hmac=TOKEN&expires=E&kid=K[&ip=1][&disposition=D][&filename=F]
function fileStatus(r) {
    var v = r.variables;
    var expiresText = v.arg_expires || "";
    var head = [expiresText, v.arg_kid || "", v.secure_link_client, v.secure_link_disposition,
                v.secure_link_filename, ""].join("|");
    return status(v.secure_link_hmac_secret, v.arg_hmac || "", expiresText, head, r.rawVariables.uri);
}

// A directory link: PREFIX/-/KID,EXPIRES[,ip],TOKEN/FILE (the captures of its location)
function directoryStatus(r) {
    var v = r.variables;
    var expiresText = v.secure_link_dir_expires || "";
    var head = [expiresText, v.secure_link_dir_kid, v.secure_link_dir_client, "directory", "", ""].join("|");
    return status(v.secure_link_dir_hmac_secret, v.secure_link_dir_token || "", expiresText, head,
                  r.rawVariables.secure_link_dir);
}

export default {fileStatus, directoryStatus};
