// Package repotest holds tests about the repository itself rather than
// about one package: a fresh clone on a new machine must build and pass its
// tests with nothing but what the repository holds.
package repotest
