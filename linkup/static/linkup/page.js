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

/** An avatar circle: the person's picture where they set one (its URL changes with it),
 * else the letter; a picture that fails to load leaves the letter showing. */
export function drawAvatar(avatar, letter, url) {
  let letterEl = avatar.querySelector(".initial");
  if (!letterEl) {
    letterEl = el("span", "initial");
    avatar.prepend(letterEl);
  }
  letterEl.textContent = letter;
  let photo = avatar.querySelector("img.picture");
  if (!url) {
    if (photo) photo.remove();
    return;
  }
  if (!photo) {
    photo = el("img", "picture");
    photo.alt = "";
    photo.decoding = "async";
    photo.addEventListener("error", () => photo.remove());
    letterEl.after(photo);
  }
  if (photo.getAttribute("src") !== url) photo.src = url;
}
