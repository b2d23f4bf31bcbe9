// Progressive enhancement of the upload page: files can be dropped on the form, and each
// file is sent on its own to the API's streaming upload (POST /api/v1/items) with its
// progress shown. Without JavaScript the form posts all files at once, as it is.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var input = document.getElementById("files");
  var list = document.getElementById("progress");
  var say = form.dataset;

  form.addEventListener("dragover", function (event) {
    event.preventDefault();
    form.classList.add("dropping");
  });
  form.addEventListener("dragleave", function () { form.classList.remove("dropping"); });
  form.addEventListener("drop", function (event) {
    event.preventDefault();
    form.classList.remove("dropping");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
    }
  });

  function row(file) {
    var item = document.createElement("li");
    var label = document.createElement("span");
    label.textContent = file.name + ": ";
    var bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    var state = document.createElement("span");
    state.className = "state";
    state.textContent = say.waiting;
    item.appendChild(label);
    item.appendChild(bar);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(state);
    list.appendChild(item);
    return { bar: bar, state: state, item: item };
  }

  function send(files, index, source) {
    if (index >= files.length) {
      form.querySelector("button[type=submit]").disabled = false;
      return;
    }
    var file = files[index];
    var shown = row(file);
    var address = "/api/v1/items?name=" + encodeURIComponent(file.name);
    if (source) { address += "&source=" + encodeURIComponent(source); }
    var request = new XMLHttpRequest();
    request.open("POST", address);
    request.setRequestHeader("X-CSRF-Token", form.elements.csrf.value);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.addEventListener("progress", function (event) {
      shown.bar.value = event.loaded;
      shown.state.textContent = say.sending;
    });
    request.addEventListener("load", function () {
      var answer = {};
      try { answer = JSON.parse(request.responseText); } catch (ignored) { answer = {}; }
      if (request.status === 200 || request.status === 201) {
        shown.bar.value = shown.bar.max;
        shown.state.textContent = request.status === 201 ? say.stored : say.held;
        var link = document.createElement("a");
        link.href = "/items/" + answer.sha256;
        link.textContent = String(answer.sha256).slice(0, 16);
        shown.item.appendChild(document.createTextNode(" · "));
        shown.item.appendChild(link);
        shown.item.className = "ok";
      } else {
        shown.state.textContent = say.failed + (answer.error ? " " + answer.error.message : "");
        shown.item.className = "failed";
      }
      send(files, index + 1, source);
    });
    request.addEventListener("error", function () {
      shown.state.textContent = say.failed;
      shown.item.className = "failed";
      send(files, index + 1, source);
    });
    request.send(file);
  }

  form.addEventListener("submit", function (event) {
    if (!input.files.length) { return; }
    event.preventDefault();
    form.querySelector("button[type=submit]").disabled = true;
    list.hidden = false;
    send(Array.prototype.slice.call(input.files), 0, form.elements.source.value.trim());
  });
}());
