import { describe, expect, it } from "vitest";
import { isCleartext, serverUrlProblem, tokenProblem } from "./validate";

describe("sign-in form checks", () => {
  it("accepts http and https addresses", () => {
    expect(serverUrlProblem("http://127.0.0.1:8787")).toBeNull();
    expect(serverUrlProblem(" https://credits.example.com ")).toBeNull();
  });
  it("names what is wrong with an address", () => {
    expect(serverUrlProblem("")).toMatch(/Enter/);
    expect(serverUrlProblem("localhost:8787")).toMatch(/http/);
    expect(serverUrlProblem("ftp://x")).toMatch(/http:\/\//);
  });
  it("tells plain http to another machine from loopback and https", () => {
    expect(isCleartext("http://example.com")).toBe(true);
    expect(isCleartext("http://10.0.0.5:8787")).toBe(true);
    expect(isCleartext("http://localhost.example.com")).toBe(true);
    expect(isCleartext("http://127.0.0.1:8787")).toBe(false);
    expect(isCleartext("http://127.1.2.3")).toBe(false);
    expect(isCleartext("http://LOCALHOST:8787")).toBe(false);
    expect(isCleartext("http://[::1]:8787")).toBe(false);
    expect(isCleartext("http://[::ffff:127.0.0.1]:8787")).toBe(false);
    expect(isCleartext("https://credits.example.com")).toBe(false);
    expect(isCleartext("not a url")).toBe(false);
  });
  it("refuses empty or spaced tokens", () => {
    expect(tokenProblem("")).toMatch(/Paste/);
    expect(tokenProblem("cb_a b")).toMatch(/spaces/);
    expect(tokenProblem("cb_abc")).toBeNull();
  });
});
