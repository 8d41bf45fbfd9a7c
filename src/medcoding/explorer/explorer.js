/* Case explorer: hovering or focusing a code highlights its attributed words. No dependencies. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("explorer-data").textContent);
  var words = {};
  Array.prototype.forEach.call(document.querySelectorAll("#note-text .w"), function (element) {
    words[element.getAttribute("data-w")] = element;
  });
  var buttons = Array.prototype.slice.call(document.querySelectorAll(".code-button"));
  var status = document.getElementById("explorer-status");
  var lit = [];
  var pinned = null;

  function clear() {
    lit.forEach(function (element) {
      element.classList.remove("hl");
      element.style.removeProperty("--i");
      element.removeAttribute("data-intensity");
    });
    lit = [];
    buttons.forEach(function (button) { button.classList.remove("active"); });
  }

  function reveal(element) {
    /* Scroll the note (not the page) so the strongest word is in view. */
    var note = document.getElementById("note-text");
    var top = element.offsetTop;
    var bottom = top + element.offsetHeight;
    if (top < note.scrollTop || bottom > note.scrollTop + note.clientHeight) {
      note.scrollTop = Math.max(0, top - note.clientHeight / 3);
    }
  }

  function show(index) {
    clear();
    var entry = data.codes[index];
    var shown = [];
    entry.attributions.forEach(function (pair) {
      var element = words[String(pair[0])];
      if (!element) { return; }
      element.classList.add("hl");
      element.style.setProperty("--i", String(pair[1]));
      element.setAttribute("data-intensity", String(pair[1]));
      lit.push(element);
      var word = element.textContent;
      if (shown.length < 5 && shown.indexOf(word) < 0) { shown.push(word); }
    });
    if (lit.length) { reveal(lit[0]); }
    buttons[index].classList.add("active");
    status.textContent = shown.length
      ? entry.code + ": strongest words " + shown.join(", ")
      : entry.code + ": no highlighted words on this page";
  }

  function restore() {
    if (pinned !== null) { show(pinned); return; }
    var focused = buttons.indexOf(document.activeElement);
    if (focused >= 0) { show(focused); return; }
    clear();
    status.textContent = "";
  }

  function pin(index) {
    pinned = pinned === index ? null : index;
    buttons.forEach(function (button, other) {
      button.setAttribute("aria-pressed", String(other === pinned));
    });
    if (pinned === null) { restore(); } else { show(pinned); }
  }

  buttons.forEach(function (button, index) {
    button.addEventListener("mouseenter", function () { show(index); });
    button.addEventListener("mouseleave", restore);
    button.addEventListener("focus", function () { show(index); });
    button.addEventListener("blur", restore);
    button.addEventListener("click", function () { pin(index); });
    button.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        var step = event.key === "ArrowDown" ? 1 : -1;
        var next = (index + step + buttons.length) % buttons.length;
        buttons[next].focus();
        event.preventDefault();
      } else if (event.key === "Escape" && pinned !== null) {
        pin(pinned);
      }
    });
  });
})();
