import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { useAction } from './use-action.js';

// Small pieces every page uses. Every value is rendered as text (preact escapes it):
// a device id, reason or grant name is data, never markup.

/** A time from the API (epoch ms or ISO 8601) as local date and time. */
export function when(t: number | string | null | undefined): string {
  if (t === null || t === undefined || t === '') return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? <p class="error" role="alert">{error}</p> : null;
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/**
 * A secret the API returns once (a claim credential, a grant token): shown until
 * the operator says it is stored, then dropped from the page's memory.
 */
export function SecretOnce({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div class="secret" role="status">
      <p>
        <strong>{label}</strong> — shown once: store it now, it cannot be shown again.
      </p>
      <textarea readOnly rows={3} value={value} data-testid="secret" onFocus={(e) => e.currentTarget.select()} />
      <button type="button" onClick={onDone}>I have stored it</button>
    </div>
  );
}

/** A confirm step with a reason (revoke): the action runs only once confirmed. */
export function ReasonAction({ label, onConfirm }: { label: string; onConfirm: (reason: string) => Promise<void> }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const action = useAction();
  if (!open) return <button type="button" class="danger" onClick={() => setOpen(true)}>{label}</button>;
  const submit = async (e: Event) => {
    e.preventDefault();
    if (await action.run(() => onConfirm(reason.trim()))) {
      setOpen(false);
      setReason('');
    }
  };
  return (
    <form class="inline" onSubmit={submit}>
      <input name="reason" placeholder="reason" aria-label="reason" value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
      <button type="submit" class="danger" disabled={action.busy}>Confirm {label.toLowerCase()}</button>
      <button type="button" onClick={() => setOpen(false)}>Cancel</button>
      <ErrorLine error={action.error} />
    </form>
  );
}

/** A button whose action may fail: the failure is shown beside it. */
export function ActionButton({ label, onClick, danger }: { label: string; onClick: () => Promise<void>; danger?: boolean }) {
  const action = useAction();
  return (
    <span>
      <button type="button" class={danger ? 'danger' : ''} disabled={action.busy} onClick={() => void action.run(onClick)}>{label}</button>
      <ErrorLine error={action.error} />
    </span>
  );
}

/** A claim's or grant's state, as the API gives it or from its revocation time. */
export function statusOf(item: { status?: string; state?: string; revokedAt?: unknown }): string {
  return item.status ?? item.state ?? (item.revokedAt ? 'revoked' : 'active');
}

/** Cursor paging as the API does it: `next` is the cursor of the following page, or null. */
export function Pager({ page, next, onFirst, onNext }: { page: number; next: string | null | undefined; onFirst: () => void; onNext: (cursor: string) => void }) {
  return (
    <nav class="pager">
      <button type="button" disabled={page === 0} onClick={onFirst}>First page</button>
      <span class="muted">page {page + 1}</span>
      <button type="button" disabled={!next} onClick={() => next && onNext(next)}>Next page</button>
    </nav>
  );
}
