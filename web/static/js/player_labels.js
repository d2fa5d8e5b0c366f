// The words of media-chrome's controls, in the site's own words. media-chrome registers its
// dictionaries by language (lang/fr.js calls addTranslation("fr", ...)); registering a
// language again replaces its dictionary, so this module takes media-chrome's and overrides
// the labels the site says otherwise. It must run before the elements render their labels:
// playback.js imports it before media-chrome's elements.
//
// Two rules for every label here. The site's vocabulary: "Vitesse de lecture" (not "Taux de
// lecture"), "Position de lecture" as the waveform says, no "téléchargement" for what is a
// stream. And a button's accessible name holds the text it shows (WCAG 2.5.3, axe's
// label-content-name-mismatch): the speed button shows "1x", so its name says "1x" too.
import { addTranslation } from "../vendor/media-chrome/utils/i18n.js";
import { En } from "../vendor/media-chrome/lang/en.js";
import { Fr } from "../vendor/media-chrome/lang/fr.js";

export const LABELS = {
  en: {
    "Playback rate": "Playback speed",
    "Playback rate {playbackRate}": "Playback speed {playbackRate}x",
    "current playback rate": "current playback speed",
    seek: "Playback position",
    "Enter fullscreen mode": "Full screen",
    "Exit fullscreen mode": "Exit full screen",
    "enter fullscreen mode": "full screen",
    "exit fullscreen mode": "exit full screen",
    "seek back {seekOffset} seconds": "back {seekOffset} seconds",
    "seek forward {seekOffset} seconds": "forward {seekOffset} seconds",
    "video not loaded, unknown time.": "not loaded yet, unknown duration.",
    "audio player": "Audio player",
    "video player": "Video player",
  },
  fr: {
    "Playback rate": "Vitesse de lecture",
    "Playback rate {playbackRate}": "Vitesse de lecture {playbackRate}x",
    "current playback rate": "vitesse de lecture actuelle",
    seek: "Position de lecture",
    volume: "Volume",
    "playback time": "temps de lecture",
    "media loading": "chargement en cours",
    "Enter fullscreen mode": "Plein écran",
    "Exit fullscreen mode": "Quitter le plein écran",
    "enter fullscreen mode": "plein écran",
    "exit fullscreen mode": "quitter le plein écran",
    "Seek backward": "Reculer",
    "Seek forward": "Avancer",
    "seek back {seekOffset} seconds": "reculer de {seekOffset} secondes",
    "seek forward {seekOffset} seconds": "avancer de {seekOffset} secondes",
    "audio player": "Lecteur audio",
    "video player": "Lecteur vidéo",
    Auto: "Automatique",
    "chapter: {chapterName}": "chapitre : {chapterName}",
    "video not loaded, unknown time.": "pas encore chargé, durée inconnue.",
    "Source Not Supported": "Format non pris en charge",
    "A network error caused the media download to fail.":
      "Une erreur réseau a interrompu le chargement de l’enregistrement.",
    "A media error caused playback to be aborted. The media could be corrupt or your browser does not support this format.":
      "Une erreur a interrompu la lecture. Le fichier est peut-être abîmé, ou votre navigateur ne lit pas ce format.",
    "An unsupported error occurred. The server or network failed, or your browser does not support this format.":
      "Une erreur inattendue s’est produite : le serveur ou le réseau a échoué, ou votre navigateur ne lit pas ce format.",
    "The media is encrypted and there are no keys to decrypt it.":
      "L’enregistrement est chiffré et aucune clé ne permet de le lire.",
  },
};

addTranslation("en", { ...En, ...LABELS.en });
addTranslation("fr", { ...Fr, ...LABELS.fr });

// media-chrome writes its menus' back button ("Back to previous menu") in English whatever the
// language: the words are in its template, not in its dictionaries. Named here in the player's
// language once the menu's element is defined.
const BACK = { en: "Back to previous menu", fr: "Revenir au menu précédent" };

export function nameMenus(root) {
  const lang = (root.querySelector("media-controller")?.getAttribute("lang") || "fr").split("-")[0];
  const label = BACK[lang] || BACK.fr;
  for (const name of ["media-rendition-menu"]) {
    customElements.whenDefined(name).then(() => {
      for (const menu of root.querySelectorAll(name)) {
        menu.shadowRoot?.querySelector("[part~='back']")?.setAttribute("aria-label", label);
      }
    });
  }
}
