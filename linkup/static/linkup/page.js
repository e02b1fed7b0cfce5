// The page the client runs in: the config the server wrote into it, and two DOM helpers.

export const config = JSON.parse(document.getElementById("linkup-config").textContent);
export const me = config.user;

export const $ = (id) => document.getElementById(id);

/** A new element; its text (user text included) goes in with textContent, never as HTML. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Nodes for text cut into pieces [{text, mark}]: text nodes, and <mark> for marked ones. */
export function markedPieces(parts) {
  return parts.map((part) => (part.mark ? el("mark", "", part.text) : document.createTextNode(part.text)));
}
