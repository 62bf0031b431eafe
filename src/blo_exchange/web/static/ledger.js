// The auditor's in-browser check of one ledger entry against the latest signed checkpoint:
//   (1) leaf hash = SHA-256(0x00 || leaf_input), from the entry's exact bytes;
//   (2) fetch the RFC 9162 inclusion proof of that index in the checkpoint's tree;
//   (3) fold the audit path (RFC 9162 §2.1.3.2) and compare with the checkpoint's root hash.
// Not checked here: the checkpoint note's Ed25519 signature and consistency between checkpoints
// (blo-exchange ledger verify does both).
"use strict";
(function () {
  var messages = {};
  function t(key, values) {
    var text = messages[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(values[name]);
    });
    return text;
  }
  function b64urlBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function hexBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function toHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function concat(prefix, a, b) {
    var out = new Uint8Array(1 + a.length + (b ? b.length : 0));
    out[0] = prefix;
    out.set(a, 1);
    if (b) out.set(b, 1 + a.length);
    return out;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }
  async function rootFromPath(index, size, leafHash, path) {
    if (index >= size) throw new Error("index beyond tree size");
    var fn = index, sn = size - 1, r = leafHash;
    for (var i = 0; i < path.length; i++) {
      if (sn === 0) throw new Error("proof too long");
      if ((fn & 1) === 1 || fn === sn) {
        r = await sha256(concat(1, path[i], r));
        if ((fn & 1) === 0) {
          while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
        }
      } else {
        r = await sha256(concat(1, r, path[i]));
      }
      fn >>= 1; sn >>= 1;
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }
  async function getJson(url) {
    var response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("HTTP " + response.status + " from " + url.split("?")[0]);
    return response.json();
  }

  async function verify(button, result) {
    result.className = "verify-result";
    result.textContent = t("running");
    if (!window.crypto || !crypto.subtle) {
      result.textContent = t("unsupported");
      result.classList.add("fail");
      return;
    }
    try {
      var index = Number(button.dataset.index);
      var checkpoint = await getJson("/auditor/checkpoint.json");
      if (index >= checkpoint.tree_size) {
        result.textContent = t("pending");
        return;
      }
      // The note's own root line must be the root we compare against.
      var noteRoot = toHex(b64urlBytes(checkpoint.note.split("\n")[2].replace(/\+/g, "-").replace(/\//g, "_")));
      if (noteRoot !== checkpoint.root_hash) throw new Error("checkpoint note and root hash differ");
      var leafHash = await sha256(concat(0, b64urlBytes(button.dataset.leaf)));
      var proof = await getJson("/auditor/inclusion.json?index=" + index + "&tree_size=" + checkpoint.tree_size);
      var root = await rootFromPath(index, checkpoint.tree_size, leafHash, proof.path.map(hexBytes));
      if (toHex(root) !== checkpoint.root_hash) throw new Error("root mismatch");
      result.textContent = t("ok", { size: checkpoint.tree_size });
      result.classList.add("ok");
    } catch (err) {
      result.textContent = t("fail", { reason: err.message });
      result.classList.add("fail");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = document.getElementById("ledger-messages");
    if (!data) return;
    messages = JSON.parse(data.textContent);
    document.querySelectorAll("button.verify").forEach(function (button) {
      var result = button.parentElement.querySelector(".verify-result");
      button.addEventListener("click", function () { verify(button, result); });
    });
  });
})();
