// Every page of the site: page swaps (Turbo Drive) under the lasting player (bar.js).
//
// A link of the site swaps the page's <body> instead of loading a new document, so that what
// plays goes on playing. Forms keep their usual behaviour but the search box's (Turbo's form
// mode "optin": only forms marked data-turbo="true"). The studio's, admin's, account and
// sign-in pages say turbo-visit-control "reload" (base.html) and are always loaded in full.
// Every script of the public pages works on the page there is after a swap (pages.js).
import * as Turbo from "../vendor/turbo/turbo.es2017-esm.js";
import "./bar.js";
// The player's loader (small): on every page, so that a page swapped in has it at once, and a
// production page needs no script of its own.
import "./player.js";

Turbo.config.forms.mode = "optin";
