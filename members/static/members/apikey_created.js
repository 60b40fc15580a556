// The page that shows a new API key once: select the key on focus, copy it with the button.
(function () {
  "use strict";
  var field = document.getElementById("plain-key");
  var button = document.getElementById("copy-key");
  if (!field || !button) { return; }
  field.addEventListener("focus", function () { field.select(); });
  button.addEventListener("click", function () {
    field.select();
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
    button.textContent = "Copied";
  });
})();
