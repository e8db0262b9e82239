// The playground: builds the /prompt URL, shows the image or the proxy's error in words,
// and offers the <img> snippet, signed by the server (POST /sign): the snippet carries a
// signature for this one image, never the key. The key stays in this browser (localStorage).
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var form = $("gen"), key = $("key"), image = $("image"), frame = $("frame");
  var placeholder = $("placeholder"), state = $("state"), errorBox = $("error");
  var snippetBox = $("snippetbox"), snippet = $("snippet"), copy = $("copy"), go = $("go");
  var STORE = "iris.accessKey";
  var lastUrl = null;

  try { key.value = localStorage.getItem(STORE) || ""; } catch (e) { /* storage disabled */ }

  $("showkey").addEventListener("click", function () {
    var hidden = key.type === "password";
    key.type = hidden ? "text" : "password";
    this.textContent = hidden ? "Hide" : "Show";
  });
  $("dice").addEventListener("click", function () {
    $("seed").value = Math.floor(Math.random() * 2147483647);
  });
  Array.prototype.forEach.call(document.querySelectorAll(".chip"), function (chip) {
    chip.addEventListener("click", function () {
      $("width").value = chip.dataset.w; $("height").value = chip.dataset.h;
    });
  });

  function query() {
    var params = new URLSearchParams();
    params.set("width", $("width").value);
    params.set("height", $("height").value);
    params.set("seed", $("seed").value);
    if ($("model").value.trim()) params.set("model", $("model").value.trim());
    return params.toString();
  }

  function authorized(extra) {
    var headers = { "Authorization": "Bearer " + key.value.trim() };
    for (var name in extra) { headers[name] = extra[name]; }
    return headers;
  }

  function pathFor(prompt) {
    return "/prompt/" + encodeURIComponent(prompt);
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    image.hidden = true;
    placeholder.hidden = false;
    placeholder.textContent = "No image this time.";
  }

  function describe(status, body) {
    var message = body && body.error && body.error.message;
    var words = {
      400: "The request is not valid", 401: "The access key was refused", 403: "Access is forbidden",
      413: "The request is too large", 429: "Too many requests", 502: "The image backends failed",
      503: "Iris is busy making other images", 504: "The image took too long"
    }[status] || ("Iris answered " + status);
    return message ? words + ": " + message : words + ".";
  }

  function attribute(text) {
    return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  }

  // The server signs the URL of the image just shown; the page never builds a URL with the key.
  function showSnippet(prompt, params, width, height) {
    function fail(text) {
      snippet.textContent = "No snippet: " + text;
      copy.hidden = true;
      snippetBox.hidden = false;
    }
    fetch("/sign", {
      method: "POST", cache: "no-store", headers: authorized({ "Content-Type": "application/json" }),
      body: JSON.stringify({ path: pathFor(prompt) + "?" + params })
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok || !body || !body.url) { fail(describe(response.status, body)); return; }
        snippet.textContent = '<img src="' + attribute(location.origin + body.url) + '" alt="' + attribute(prompt) +
          '" width="' + width + '" height="' + height + '" loading="lazy">';
        copy.hidden = false;
        snippetBox.hidden = false;
      });
    }).catch(function () { fail("could not reach Iris."); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var prompt = $("prompt").value.trim();
    if (!prompt) { showError("Write a prompt first."); return; }
    try { localStorage.setItem(STORE, key.value.trim()); } catch (e) { /* storage disabled */ }
    errorBox.hidden = true;
    go.disabled = true;
    go.textContent = "Generating…";
    frame.classList.add("loading");
    placeholder.hidden = false;
    placeholder.textContent = "Drawing your image…";
    image.hidden = true;
    state.textContent = "";
    var started = performance.now();
    var width = $("width").value, height = $("height").value, params = query();
    snippetBox.hidden = true;
    fetch(pathFor(prompt) + "?" + params, { headers: authorized({}), cache: "no-store" }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return null; }).then(function (body) {
          showError(describe(response.status, body));
        });
      }
      var cache = response.headers.get("X-Cache");
      return response.blob().then(function (blob) {
        if (lastUrl) URL.revokeObjectURL(lastUrl);
        lastUrl = URL.createObjectURL(blob);
        image.onload = function () {
          placeholder.hidden = true;
          image.hidden = false;
          var seconds = ((performance.now() - started) / 1000).toFixed(1);
          state.textContent = image.naturalWidth + "×" + image.naturalHeight + " · " + seconds + " s · " +
            (cache === "HIT" ? "from the cache" : "freshly generated");
        };
        image.onerror = function () { showError("Iris answered, but the answer is not an image."); };
        image.alt = prompt;
        image.src = lastUrl;
        showSnippet(prompt, params, width, height);
      });
    }).catch(function () {
      showError("Could not reach Iris. Is the server running?");
    }).then(function () {
      go.disabled = false;
      go.textContent = "Generate";
      frame.classList.remove("loading");
    });
  });

  copy.addEventListener("click", function () {
    var button = this, text = snippet.textContent;
    var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(); });
    } else { select(); }
    function select() {
      var range = document.createRange();
      range.selectNodeContents(snippet);
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { button.textContent = "Press Ctrl+C"; }
    }
  });
}());
