// The assistant widget (partials/assistant.html): open/close the panel, keep aria-expanded in
// step, move focus into the panel and back to the button, Escape closes. Asking is htmx.
(() => {
  const root = document.querySelector("[data-assistant]");
  if (!root) return;
  const toggle = root.querySelector("[data-assistant-toggle]");
  const panel = root.querySelector("#assistant-panel");
  const field = () => panel.querySelector("#assistant-q");

  const show = (open) => {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) field()?.focus();
    else toggle.focus();
  };

  toggle.addEventListener("click", () => show(panel.hidden));
  root.querySelector("[data-assistant-close]").addEventListener("click", () => show(false));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") show(false);
  });
  // The field is swapped after every answer: keep the cursor in it for the next question.
  document.body.addEventListener("htmx:oobAfterSwap", (event) => {
    if (!panel.hidden && event.detail.target?.id === "assistant-field") field()?.focus();
  });
})();
