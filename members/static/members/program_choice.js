// The program picker of the admin's analytics pages: choosing a program shows it at once.
(function () {
  "use strict";
  var select = document.getElementById("id_program");
  if (select && select.form && select.form.id === "program-choice") {
    select.addEventListener("change", function () { select.form.submit(); });
  }
})();
