// The cover field of the studio's edit form. The image is sent with the rest of the form by
// its one Save button; this script only answers sooner than the server would:
// - a file over the size limit is refused as soon as it is chosen, instead of travelling for
//   nothing (and, past the server's cap on a form's size, coming back as an error page that
//   could not give back what was typed);
// - the image chosen is shown in place of the current one before it is saved.
// Without it, the form works the same; the server refuses what this refuses, in the same words.

function setUp(field) {
  const input = field.querySelector("input[type=file]");
  const problem = field.querySelector("[data-cover-problem]");
  const current = field.querySelector(".studio-cover__current");
  const pending = field.querySelector("[data-cover-pending]");
  if (!input || !problem || !current) return;
  const shown = Array.from(current.children);
  const maxBytes = Number(field.dataset.maxBytes) || Infinity;
  const preview = document.createElement("img");
  preview.className = "studio-cover__image";
  preview.alt = field.dataset.previewAlt ?? "";
  preview.width = preview.height = 320;
  preview.dataset.coverPreview = "";
  preview.hidden = true;
  current.prepend(preview);

  function showCurrent() {
    if (pending) pending.hidden = true;
    preview.hidden = true;
    preview.removeAttribute("src");
    for (const element of shown) element.hidden = false;
  }

  function refuse(sentence) {
    input.value = "";
    problem.textContent = sentence;
    problem.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", problem.id);
  }

  // A file the browser cannot draw (not an image at all) leaves the current cover in view;
  // the server says why when the form is saved.
  preview.addEventListener("error", showCurrent);

  input.addEventListener("change", () => {
    problem.hidden = true;
    problem.textContent = "";
    // What the server said of the file sent before (refused, to be chosen again) is now past.
    for (const said of field.querySelectorAll(`#${input.id}-error, #${input.id}-again`)) {
      said.hidden = true;
    }
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    showCurrent();
    const file = input.files[0];
    if (!file) return;
    if (file.size > maxBytes) {
      refuse(field.dataset.tooBig);
      return;
    }
    // A data: address, which the site's Content-Security-Policy lets images use (blob: not).
    const reader = new FileReader();
    reader.addEventListener("load", () => {
      if (input.files[0] !== file) return; // another file was chosen meanwhile
      preview.src = reader.result;
      preview.hidden = false;
      if (pending) pending.hidden = false;
      for (const element of shown) element.hidden = true;
    });
    reader.readAsDataURL(file);
  });
}

document.querySelectorAll("[data-cover-field]").forEach(setUp);
