// Console islands. Without JS every form still posts and the page answers in full.
//
// Uploads with progress: <form data-upload="#a,#b"> is sent by XMLHttpRequest so the browser
// reports the upload's progress to the <progress> inside the form; the answer (the same full
// page a plain post would get) replaces the listed parts of this page (report, stock, list).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-upload]");
  if (!form || !window.XMLHttpRequest || !window.DOMParser) return;
  event.preventDefault();
  const bar = form.querySelector("progress");
  const state = form.querySelector("[data-sending]");
  const button = form.querySelector("button[type=submit]");
  const token = form.querySelector("input[name=_csrf_token]");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  if (token) xhr.setRequestHeader("x-csrftoken", token.value);
  xhr.setRequestHeader("x-console-upload", "1");
  const show = (percent) => {
    if (!bar) return;
    bar.hidden = false;
    bar.value = percent;
    form.dataset.progress = String(percent);
  };
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) show(Math.round((e.loaded / e.total) * 100));
  });
  xhr.upload.addEventListener("load", () => {
    show(100);
    if (state) state.textContent = state.dataset.waiting;
  });
  xhr.addEventListener("load", () => {
    const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
    for (const selector of form.dataset.upload.split(",")) {
      const fresh = doc.querySelector(selector.trim());
      const here = document.querySelector(selector.trim());
      if (fresh && here) {
        const node = document.importNode(fresh, true);
        here.replaceWith(node);
        // A large import answers with a job that polls its progress (hx-trigger): let htmx see it.
        if (window.htmx) window.htmx.process(node);
      }
    }
    // Field errors come back on the form itself: show them, keep the typed keys out of the DOM.
    const freshForm = doc.querySelector(`form[action="${form.getAttribute("action")}"]`);
    form.querySelectorAll(".field").forEach((field, i) => {
      const other = freshForm && freshForm.querySelectorAll(".field")[i];
      const error = other && other.querySelector(".field-error");
      const old = field.querySelector(".field-error");
      if (old) old.remove();
      field.classList.toggle("has-error", Boolean(error));
      if (error) field.appendChild(document.importNode(error, true));
    });
    if (xhr.status < 400) form.reset();
    if (state) state.hidden = true;
    if (button) button.disabled = false;
    form.dataset.done = String(xhr.status);
  });
  xhr.addEventListener("error", () => {
    if (state) { state.hidden = false; state.textContent = "✗"; }
    if (button) button.disabled = false;
  });
  if (button) button.disabled = true;
  if (state) { state.hidden = false; state.textContent = state.dataset.sending; }
  show(0);
  xhr.send(new FormData(form));
});

// Dangerous buttons ask first: <button data-confirm="…">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
