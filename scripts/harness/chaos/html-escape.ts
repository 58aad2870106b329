// Text into HTML (element content and attribute values alike): the report shows user data (keys,
// values, node log lines) that must never become markup.

export function esc(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  );
}
