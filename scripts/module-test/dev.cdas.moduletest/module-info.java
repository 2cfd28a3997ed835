/** A client of the library as another tool has it: a named module that reads dev.cdas (scripts/test-module.sh). */
module dev.cdas.moduletest {
    requires dev.cdas;
}
