// Form checks that can be made before asking the server.

/** Why `raw` is not a usable server URL, or null when it is. */
export function serverUrlProblem(raw: string): string | null {
  const value = raw.trim();
  if (value === "") return "Enter the server address.";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "That is not a web address (e.g. http://127.0.0.1:8787).";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "The address must start with http:// or https://.";
  return null;
}

/**
 * Whether `raw` is plain http:// to another machine: the token would cross the network in
 * cleartext. The engine refuses it unless the person ticks "Allow unencrypted http"; the
 * window shows that box only then. Mirrors `api::is_loopback` (crates/client).
 */
export function isCleartext(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return false;
  }
  if (url.protocol !== "http:") return false;
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host === "[::1]") return false;
  if (/^127\.\d+\.\d+\.\d+$/.test(host)) return false;
  if (/^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host)) return false;
  return true;
}

export function tokenProblem(raw: string): string | null {
  const value = raw.trim();
  if (value === "") return "Paste your account token.";
  if (/\s/.test(value)) return "The token cannot contain spaces.";
  return null;
}
