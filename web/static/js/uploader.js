// The studio's upload panel: Uppy's Dashboard sending files over tus to /api/v1/uploads/.
//
// Uploads are resumable twice over: tus-js-client keeps each file's upload URL in localStorage
// (so the same file picked again continues at the server's offset), and GoldenRetriever keeps
// the selection itself across a reload or a crash of the tab. The panel's settings come from its
// data- attributes (web/templates/studio_macros.html); the CSRF token from the page's
// <meta name="csrf-token">, as a header, since tus requests carry the session cookie.
import { Dashboard, GoldenRetriever, Tus, Uppy } from "../vendor/uppy/uppy.min.mjs";

const CHUNK_BYTES = 8 * 1024 * 1024;
// After a network failure: at once, then waiting longer and longer (a train going through a
// tunnel), before Uppy shows the error and its retry button.
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000];
// What the transcoder takes; the types cover what browsers report, the extensions the files
// whose type a browser does not know (Matroska, MTS from camcorders, FLAC on some systems).
const ALLOWED = [
  "audio/*",
  "video/*",
  ".aac", ".aif", ".aiff", ".flac", ".m4a", ".mp3", ".oga", ".ogg", ".opus", ".wav", ".wma",
  ".avi", ".m2ts", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".webm", ".wmv",
];

// The site's own words where Uppy's French differs from them: a file is "envoyé", never
// "téléversé" (the glossary heads cite_live/locale/fr/LC_MESSAGES/messages.po), and the strings
// Uppy's French catalogue lacks, which would otherwise show up in English.
const STRINGS = {
  fr: {
    browse: "parcourir",
    browseFiles: "parcourir vos fichiers",
    cancelUpload: "Annuler l’envoi",
    creatingAssembly: "Préparation de l’envoi…",
    dashboardTitle: "Envoi de fichiers",
    dashboardWindowTitle: "Fenêtre d’envoi de fichiers (Échap pour la fermer)",
    dataUploadedOfUnknown: "%{complete} sur une taille inconnue",
    failedToAddFiles: "Les fichiers n’ont pas pu être ajoutés",
    failedToUpload: "L’envoi de %{file} a échoué",
    filesUploadedOfTotal: {
      0: "%{complete} sur %{smart_count} fichier envoyé",
      1: "%{complete} sur %{smart_count} fichiers envoyés",
    },
    myDevice: "Mon appareil",
    noMoreFilesAllowed: "Aucun fichier ne peut être ajouté pendant l’envoi",
    pauseUpload: "Mettre l’envoi en pause",
    pleaseWait: "Patientez…",
    recoveredAllFiles: "Tous les fichiers ont été retrouvés : vous pouvez reprendre l’envoi.",
    recoveredXFiles: {
      0: "Un fichier n’a pas pu être retrouvé en entier : choisissez-le à nouveau.",
      1: "%{smart_count} fichiers n’ont pas pu être retrouvés en entier : choisissez-les à nouveau.",
    },
    removeFile: "Retirer le fichier %{file}",
    resumeUpload: "Reprendre l’envoi",
    retryUpload: "Réessayer l’envoi",
    sessionRestored: "Votre sélection a été retrouvée",
    showErrorDetails: "Voir le détail de l’erreur",
    timedOut: "Envoi bloqué depuis %{seconds} secondes : il est annulé.",
    unnamed: "Sans nom",
    upload: "Envoyer",
    uploadComplete: "Envoi terminé",
    uploadFailed: "L’envoi a échoué",
    uploadPaused: "Envoi en pause",
    uploadStalled: "Envoi bloqué depuis %{seconds} secondes ; il faudra peut-être le recommencer.",
    uploadXFiles: { 0: "Envoyer %{smart_count} fichier", 1: "Envoyer %{smart_count} fichiers" },
    uploadXNewFiles: {
      0: "Envoyer +%{smart_count} fichier",
      1: "Envoyer +%{smart_count} fichiers",
    },
    uploading: "Envoi en cours",
    uploadingXFiles: { 0: "Envoi de %{smart_count} fichier", 1: "Envoi de %{smart_count} fichiers" },
    youCanOnlyUploadFileTypes: "Vous ne pouvez envoyer que : %{types}",
    youCanOnlyUploadX: {
      0: "Vous ne pouvez envoyer que %{smart_count} fichier",
      1: "Vous ne pouvez envoyer que %{smart_count} fichiers",
    },
  },
};

async function localeFor(lang) {
  if (lang !== "fr") return undefined;
  try {
    const french = (await import("../vendor/uppy/locales/fr_FR.js")).default;
    return { ...french, strings: { ...french.strings, ...STRINGS.fr } };
  } catch {
    return undefined; // the widget then speaks English; the page around it stays French
  }
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

/** The title a file's name suggests, as the server makes it (cite_live.catalogue.filename_title):
 * "live_at-la-cite.mp4" → "live at la cite". Sent unchanged, the server takes it as no title
 * chosen, and the file's own tags may name the production. */
export function titleOf(filename) {
  let stem = filename.split("/").pop();
  if (stem.includes(".")) stem = stem.slice(0, stem.lastIndexOf("."));
  return stem.replace(/[_-]/g, " ").split(/\s+/).filter(Boolean).join(" ") || "Sans titre";
}

/**
 * The fields of a new upload's file card: its title, its visibility once published (the
 * production is a draft until then), and whether it plays as soon as it is playable, while it
 * is processing ("1" or "0"). Their labels and the choices come from the panel, in the page's
 * language; a replacement's panel has none.
 */
function metaFieldsOf(element) {
  const choices = element.querySelector("template[data-uploader-visibilities]");
  if (!choices) return [];
  const options = Array.from(choices.content.querySelectorAll("option"), (option) => ({
    value: option.value,
    label: option.textContent,
  }));
  return [
    { id: "title", name: element.dataset.titleLabel },
    {
      id: "visibility",
      name: element.dataset.visibilityLabel,
      render({ value, onChange, fieldCSSClasses, form }, h) {
        return h(
          "select",
          {
            // The id the card's label points at.
            id: "uppy-Dashboard-FileCard-input-visibility",
            class: fieldCSSClasses.text,
            form,
            value,
            onChange: (event) => onChange(event.target.value),
          },
          options.map(({ value: code, label }) =>
            h("option", { value: code, selected: code === value }, label),
          ),
        );
      },
    },
    {
      id: "publish_early",
      name: element.dataset.publishEarlyLabel,
      render({ value, onChange, form }, h) {
        return h("input", {
          type: "checkbox",
          id: "uppy-Dashboard-FileCard-input-publish_early",
          class: "uploader__checkbox",
          form,
          checked: value === "1",
          onChange: (event) => onChange(event.target.checked ? "1" : "0"),
        });
      },
    },
  ];
}

/**
 * Start the panel in `element`; `onUploaded(file)` runs when a file has reached the server
 * whole (its production then exists, in processing). Returns the Uppy instance.
 */
export async function startUploader(element, { onUploaded = () => {} } = {}) {
  const { endpoint, maxBytes, production, lang } = element.dataset;
  const single = "single" in element.dataset;
  const metaFields = metaFieldsOf(element);
  const uppy = new Uppy({
    // One store per panel: a file chosen to replace one production must never be restored into
    // the panel of another, nor into the new-uploads one.
    id: production ? `replace-${production}` : "studio",
    autoProceed: false,
    locale: await localeFor(lang),
    restrictions: {
      maxFileSize: Number(maxBytes) || null,
      allowedFileTypes: ALLOWED,
      maxNumberOfFiles: single ? 1 : null,
      requiredMetaFields: metaFields.length ? ["title"] : [],
    },
    meta: production ? { production } : {},
  });
  uppy
    .use(Dashboard, {
      inline: true,
      target: element.querySelector("[data-uploader-dashboard]"),
      width: "100%",
      // As tall as the box studio.css reserves for it, so nothing moves when it appears.
      height: window.matchMedia("(min-width: 48rem)").matches ? 360 : 340,
      proudlyDisplayPoweredByUppy: false,
      hideProgressDetails: false,
      theme: "light",
      metaFields,
      // A file added opens its card at once: the artist sees the title it will have, and whom
      // it will be for, before sending it.
      autoOpen: metaFields.length ? "metaEditor" : null,
    })
    .use(Tus, {
      endpoint,
      chunkSize: CHUNK_BYTES,
      retryDelays: RETRY_DELAYS,
      headers: { "X-CSRF-Token": csrfToken() },
      // What the server reads: the file's name and type (sent as filename/filetype) and either
      // the production whose recording it replaces (replace page) or the new one's title and
      // visibility once published. (Uppy would send a field it does not have as the string
      // "undefined".)
      allowedMetaFields: production
        ? ["name", "type", "production"]
        : ["name", "type", "title", "visibility", "publish_early"],
      removeFingerprintOnSuccess: true,
      limit: 2,
    })
    .use(GoldenRetriever);
  if (metaFields.length) {
    // Proposed, never imposed: a file restored after a reload keeps what was chosen for it.
    uppy.on("file-added", (file) => {
      uppy.setFileMeta(file.id, {
        title: file.meta.title ?? titleOf(file.name),
        visibility: file.meta.visibility ?? "public",
        publish_early: file.meta.publish_early ?? "0",
      });
    });
  }
  // Within reach of the browser tests and of a developer's console.
  element.uppy = uppy;
  uppy.on("upload-success", (file) => {
    element.querySelector("[data-uploader-done]")?.removeAttribute("hidden");
    onUploaded(file);
  });
  return uppy;
}

/** Start every upload panel of the page; a panel that cannot start says so. */
export function startUploaders(options) {
  return Promise.all(
    Array.from(document.querySelectorAll("[data-uploader]"), (element) =>
      startUploader(element, options).catch((error) => {
        element.querySelector("[data-uploader-failed]")?.removeAttribute("hidden");
        console.error("the uploader could not start", error);
        return null;
      }),
    ),
  );
}
