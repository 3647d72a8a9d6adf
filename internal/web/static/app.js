// Progressive enhancement only: every page works without this file.
// Copy buttons copy the text of the element named by data-copy.
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.innerText).then(function () { b.textContent = "Copied"; });
});
document.querySelectorAll("[data-print]").forEach(function (b) {
  b.hidden = false;
  b.addEventListener("click", function () { window.print(); });
});

// Passkeys: the one thing the pages cannot do without JavaScript. A form
// with data-webauthn="create" or "get" carries the server's options in the
// element named by data-options (a JSON script block); on submit the
// browser asks the authenticator, and the answer goes in the form's
// hidden "code" field as JSON (the WebAuthn JSON serialization).
(function () {
  if (!window.PublicKeyCredential) {
    document.querySelectorAll("[data-webauthn]").forEach(function (f) {
      var p = f.querySelector("[data-webauthn-status]");
      if (p) p.textContent = "This browser cannot use passkeys.";
    });
    return;
  }
  function toBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function options(form) {
    var el = document.getElementById(form.getAttribute("data-options"));
    var o = JSON.parse(el.textContent);
    var pk = o.publicKey;
    pk.challenge = toBuf(pk.challenge);
    if (pk.user) pk.user.id = toBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return pk;
  }
  function serialize(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) out.response.userHandle = toB64(r.userHandle);
    }
    return JSON.stringify(out);
  }
  function run(form, extra) {
    var status = form.querySelector("[data-webauthn-status]");
    var pk = options(form), call;
    if (form.getAttribute("data-webauthn") === "create") {
      call = navigator.credentials.create({ publicKey: pk });
    } else {
      var req = { publicKey: pk };
      if (extra) for (var k in extra) req[k] = extra[k];
      call = navigator.credentials.get(req);
    }
    return call.then(function (cred) {
      form.querySelector("input[name=code]").value = serialize(cred);
      form.submit();
    }, function (err) {
      if (status && !(extra && extra.mediation)) status.textContent = "The passkey was not used (" + err.name + "). Try again.";
    });
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (form.querySelector("input[name=code]").value) return;
      e.preventDefault();
      run(form);
    });
    // Autofill: the sign-in page's passkeys are offered in the email
    // field's suggestions where the browser can (conditional mediation).
    if (form.hasAttribute("data-webauthn-conditional") && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) run(form, { mediation: "conditional" });
      });
    }
  });
})();
