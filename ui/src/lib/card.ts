// The add-card form's checks, made before the number leaves the window. The number goes
// to the engine once and only a payment token is kept (in the keychain).

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export interface CardForm {
  number: string;
  expiry: string; // MM/YY or MM/YYYY
  cvc: string;
}

export type CardCheck = { ok: true; number: string; month: number; year: number; cvc: string } | { ok: false; field: keyof CardForm; problem: string };

export function checkCard(form: CardForm, now: Date): CardCheck {
  const number = form.number.replace(/[\s-]/g, "");
  if (!/^\d{12,19}$/.test(number)) return { ok: false, field: "number", problem: "A card number has 12 to 19 digits." };
  if (!luhnValid(number)) return { ok: false, field: "number", problem: "That card number has a typo." };
  const m = /^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/.exec(form.expiry);
  if (!m) return { ok: false, field: "expiry", problem: "Write the expiry as MM/YY." };
  const month = Number(m[1]);
  const year = m[2].length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
  if (month < 1 || month > 12) return { ok: false, field: "expiry", problem: "The month must be 01 to 12." };
  const y = now.getUTCFullYear();
  const mo = now.getUTCMonth() + 1;
  if (year < y || (year === y && month < mo)) return { ok: false, field: "expiry", problem: "This card has expired." };
  if (!/^\d{3,4}$/.test(form.cvc.trim())) return { ok: false, field: "cvc", problem: "The CVC is 3 or 4 digits." };
  return { ok: true, number, month, year, cvc: form.cvc.trim() };
}
