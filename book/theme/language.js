// A link to this page in the book's other language, in the menu bar: the
// English book is built into book/build, the Chinese one into
// book/build/zh-CN (see .ci/run and README.md), with the same file names.
(function () {
    "use strict";
    var buttons = document.querySelector(".right-buttons");
    if (!buttons || typeof path_to_root === "undefined") {
        return;
    }
    var chinese = document.documentElement.lang.indexOf("zh") === 0;
    var root = new URL(path_to_root || "./", window.location.href);
    var page = window.location.href.slice(root.href.length) || "index.html";
    var link = document.createElement("a");
    link.href = new URL((chinese ? "../" : "zh-CN/") + page, root).href;
    link.textContent = chinese ? "English" : "简体中文";
    link.title = chinese ? "This page in English" : "本页的简体中文版";
    link.lang = chinese ? "en" : "zh-CN";
    link.className = "language-link";
    buttons.insertBefore(link, buttons.firstChild);
})();
