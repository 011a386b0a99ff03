import { useState } from 'preact/hooks';

/** A form's text fields: their values, and `field(k)` to spread on the input that edits `k`. */
export function useForm<F extends Record<string, string>>(initial: F) {
  const [form, setForm] = useState(initial);
  const field = (k: keyof F) => ({
    value: form[k],
    onInput: (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value }),
  });
  return { form, setForm, field };
}
