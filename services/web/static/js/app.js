// Small islands of behaviour; the pages work without them except where noted.
// Copy buttons: <button data-copy="#target-id"> copies the target's text (卡密).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const target = document.querySelector(button.dataset.copy);
  if (!target) return;
  const text = target.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Older browsers or no permission: select the text so the buyer can copy it by hand.
    const range = document.createRange();
    range.selectNodeContents(target);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand && document.execCommand("copy");
  }
  const label = button.textContent;
  button.textContent = button.dataset.copied || "✓";
  button.setAttribute("data-done", "1");
  setTimeout(() => { button.textContent = label; }, 1500);
});

// Upload progress: <form data-progress> with a <progress> inside shows the upload's progress
// (htmx raises htmx:xhr:progress for hx-post forms).
document.addEventListener("htmx:xhr:progress", (event) => {
  const form = event.target.closest("form[data-progress]");
  if (!form || !event.detail.lengthComputable) return;
  const bar = form.querySelector("progress");
  if (bar) { bar.hidden = false; bar.value = Math.round((event.detail.loaded / event.detail.total) * 100); }
});
