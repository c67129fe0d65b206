// The language the page reports as navigator.language, made safe for Intl.
//
// Why: under the C.UTF-8 locale — Debian's default in containers and minimal installs —
// WebKitGTK reports navigator.language as "C", which is not a BCP 47 tag. Intl throws a
// RangeError for it, and uPlot builds an Intl.NumberFormat from navigator.language while
// its module loads, so the dashboard's code never started: a blank window and no error
// anywhere. The app's text is English, so a tag Intl refuses falls back to en-US.
//
// Import this module first in every window's entry (module evaluation follows import order).

export const FALLBACK_LANGUAGE = "en-US";

/** `tag` if Intl accepts it (canonicalised), else en-US. */
export function usableLanguage(tag: string | null | undefined): string {
  if (!tag) return FALLBACK_LANGUAGE;
  try {
    return Intl.getCanonicalLocales(tag)[0] ?? FALLBACK_LANGUAGE;
  } catch {
    return FALLBACK_LANGUAGE;
  }
}

/** Shadows navigator.language/languages when the web view reports tags Intl refuses. */
export function repairNavigatorLanguage(nav: Navigator): void {
  const language = usableLanguage(nav.language);
  if (language === nav.language) return;
  const languages = [language, ...(nav.languages ?? []).map(usableLanguage).filter((l) => l !== language)];
  Object.defineProperty(nav, "language", { value: language, configurable: true });
  Object.defineProperty(nav, "languages", { value: Object.freeze(languages), configurable: true });
}

if (typeof navigator !== "undefined") repairNavigatorLanguage(navigator);
